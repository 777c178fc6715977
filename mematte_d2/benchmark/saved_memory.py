"""Bytes that autograd keeps for backward while chosen modules run, for the training benchmark.

MEMatte's training step needs more memory than ViTMatte's because of its routers and token
refiners; this meter measures what groups of modules add themselves: the distinct storages
their forward passes save for backward. Storages a module received as inputs are not counted
(its caller holds those anyway), nor are parameters (the benchmark counts them with their
gradients and optimizer state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn


class SavedTensorMeter:
    """Per named group of modules, the bytes of distinct storages saved for backward inside
    the group's forwards. Use as a context manager around a step; read ``bytes[name]`` after.

    A tensor saved inside modules of several groups (say a refiner inside a block) counts in
    each of them; nested modules of one group count it once.
    """

    def __init__(self, groups: Mapping[str, Iterable[nn.Module]]):
        self.groups = {name: list(modules) for name, modules in groups.items()}
        self.bytes = dict.fromkeys(self.groups, 0)
        self._seen: dict[str, set[int]] = {name: set() for name in self.groups}
        self._frames: list[tuple[str, set[int]]] = []  # (group, storages not to count)
        self._contexts: list = []
        self._hooks: list = []

    def __enter__(self) -> SavedTensorMeter:
        for name, modules in self.groups.items():
            self.bytes[name] = 0
            self._seen[name].clear()
            for module in modules:
                self._hooks.append(module.register_forward_pre_hook(
                    lambda m, args, kwargs, name=name: self._enter(name, m, (args, kwargs)),
                    with_kwargs=True))
                self._hooks.append(module.register_forward_hook(self._exit, with_kwargs=True))
        return self

    def __exit__(self, *exc) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        while self._contexts:  # a forward that raised never reached its exit hook
            self._contexts.pop().__exit__(None, None, None)
        self._frames.clear()

    def _enter(self, name: str, module: nn.Module, inputs) -> None:
        excluded = {_storage_key(t) for t in _tensors(inputs)}
        excluded |= {_storage_key(p) for p in module.parameters()}
        outer = next((frame for group, frame in reversed(self._frames) if group == name), set())
        self._frames.append((name, excluded | outer))
        context = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        context.__enter__()
        self._contexts.append(context)

    def _exit(self, module, args, kwargs, output) -> None:
        self._contexts.pop().__exit__(None, None, None)
        self._frames.pop()

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        key = _storage_key(tensor)
        counted: set[str] = set()
        for name, excluded in reversed(self._frames):  # innermost frame of each group decides
            if name in counted:
                continue
            counted.add(name)
            if key not in excluded and key not in self._seen[name]:
                self._seen[name].add(key)
                self.bytes[name] += tensor.untyped_storage().nbytes()
        return tensor


def _storage_key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def _tensors(obj) -> Iterable[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, Mapping):
        for item in obj.values():
            yield from _tensors(item)
