from .soft_label_encoder_decoder import SoftLabelEncoderDecoder

__all__ = ['SoftLabelEncoderDecoder']
