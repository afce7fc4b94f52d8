from .inference import class_areas, init_segmentor, predict_image, predict_tiled

__all__ = ['init_segmentor', 'predict_image', 'predict_tiled', 'class_areas']
