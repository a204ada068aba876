"""Three recipes x 5 seeds on the grouped task; see jaxexp/configs/recipes.py."""

from jaxexp.configs.recipes import get_config

__all__ = ["get_config"]
