from .inference import class_areas, init_segmentor, predict_image

__all__ = ['init_segmentor', 'predict_image', 'class_areas']
