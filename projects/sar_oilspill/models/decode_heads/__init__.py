from .saross_head import SAROSSHead

__all__ = ['SAROSSHead']
