"""Registries of the swappable token-routing components and a name -> object build helper.

A LazyConfig selects components by name (``model.backbone.router="LocalRouter"``); the routed
encoder resolves the names here when it is constructed.
"""

from __future__ import annotations

from typing import Any

from detectron2.utils.registry import Registry

ROUTER_REGISTRY = Registry("ROUTER")
ROUTER_REGISTRY.__doc__ = """
Routers score every token of a global block: ``Router(dim, **kwargs)``, called on block inputs
``[B, N, C]``, returns log-probabilities ``[B, N, 2]`` (channel 0 = global attention, 1 = refiner).
"""

TOKEN_REFINER_REGISTRY = Registry("TOKEN_REFINER")
TOKEN_REFINER_REGISTRY.__doc__ = """
Token refiners are the cheap branch of a routed block: ``Refiner(dim, **kwargs)``, called on the
block input grid ``[B, H, W, C]``, returns the same shape. ``inference_floats_per_token()``
states the floats per token it holds at its peak in an inference forward, output included (the
input not): the memory estimate of inference takes the refiner's cost from there.
"""

ROUTING_POLICY_REGISTRY = Registry("ROUTING_POLICY")
ROUTING_POLICY_REGISTRY.__doc__ = """
Routing policies turn router log-probabilities into decisions and a budget loss:
``Policy(keep_ratio, **kwargs)``; see :class:`mematte_d2.modeling.routing.RoutingPolicy`.
"""


def build_from_registry(registry: Registry, name: str, *args: Any, **kwargs: Any) -> Any:
    """Instantiate ``registry[name](*args, **kwargs)``; an unknown name raises a ``KeyError``
    that lists the registered choices."""
    if not isinstance(name, str) or name not in registry:
        choices = ", ".join(sorted(key for key, _ in registry))
        raise KeyError(
            f"No {registry._name.lower()} named {name!r} in the {registry._name} registry; "
            f"registered choices: {choices}"
        )
    return registry.get(name)(*args, **kwargs)
