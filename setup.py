"""mematte_d2: MEMatte (memory-efficient matting with adaptive token routing) on detectron2.

torch, torchvision and detectron2 are installed by tools/setup_env.sh (detectron2 is not
on PyPI); `import mematte_d2` checks for them and says how to install what is missing.
"""

from setuptools import find_packages, setup

ZOO_CONFIGS = "mematte_d2.model_zoo.configs"

setup(
    name="mematte_d2",
    version="0.1.0",
    description="MEMatte: memory-efficient trimap-based image matting as a detectron2 framework",
    license="MIT",
    python_requires=">=3.10",
    # configs/ stays where it is and is installed as mematte_d2/model_zoo/configs, where
    # mematte_d2.model_zoo.get_config finds it (a source checkout reads configs/ directly).
    packages=find_packages(include=["mematte_d2", "mematte_d2.*"]) + [ZOO_CONFIGS],
    package_dir={ZOO_CONFIGS: "configs"},
    package_data={ZOO_CONFIGS: ["**/*.py"]},
    install_requires=[
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "fvcore>=0.1.5",
        "iopath>=0.1.9",
        "omegaconf>=2.1,<2.4",
        "scikit-image>=0.21",
        "scipy>=1.10",
        "psutil>=5.9",
        "tqdm>=4.60",
        "tabulate>=0.9",
        "tensorboard>=2.10",
        "matplotlib>=3.7",
        "pymatting>=1.1",
        "pillow>=10",
        "safetensors>=0.4",
        "hydra-core>=1.1",
    ],
    extras_require={
        "export": ["onnx>=1.16", "onnxruntime>=1.18"],
        # The web app (mematte-app); selenium drives its browser test.
        "app": ["gradio>=6.31,<7", "selenium>=4.51"],
    },
    entry_points={
        "console_scripts": [
            "mematte-predict=mematte_d2.cli.predict:main",
            "mematte-convert-checkpoint=mematte_d2.cli.convert_checkpoint:main",
            "mematte-evaluate-folder=mematte_d2.cli.evaluate_folder:main",
            "mematte-train=mematte_d2.cli.train:cli",
            "mematte-demo=mematte_d2.cli.demo:main",
            "mematte-benchmark=mematte_d2.cli.benchmark:main",
            "mematte-export=mematte_d2.cli.export:main",
            "mematte-app=mematte_d2.app.launch:main",
        ]
    },
)
