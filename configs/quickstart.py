"""The default sweep (3 learning rates x 2 weight decays x 4 seeds); see jaxexp/configs/quickstart.py."""

from jaxexp.configs.quickstart import get_config

__all__ = ["get_config"]
