"""Deep-SAR Oil Spill (SOS) dataset of CBD-Net (Zhu et al., IEEE TGRS 2022)."""
from mmseg.registry import DATASETS

from .base_oilspill import OilSpillBaseDataset


@DATASETS.register_module()
class SOSDataset(OilSpillBaseDataset):
    """SOS: ALOS-PALSAR (Gulf of Mexico, ``palsar``) and Sentinel-1A (Persian Gulf, ``sentinel``) 256x256 tiles.

    On-disk layout (the original release; the training split is a flat folder, the test split has sub-folders)::

        data/sos
        ├── train
        │   ├── palsar      <id>_sat.jpg  <id>_mask.png   (3101 pairs)
        │   └── sentinel    <id>_sat.jpg  <id>_mask.png   (3354 pairs)
        └── test
            ├── palsar      sat/<id>_sat.jpg  gt/<id>_mask.png   (776 pairs)
            └── sentinel    sat/<id>_sat.jpg  gt/<id>_mask.png   (839 pairs)

    Images are 8-bit JPEGs with three identical channels. Masks are RGB PNGs with oil = (255, 255, 255) and
    background = (0, 0, 0); about half of the training masks also have intermediate values along edges. Labels are
    decoded by thresholding (``>= 128`` is oil): 0 = background (sea), 1 = oil spill. A mask value of 255 never
    reaches mmseg's ignore index.

    Config: ``data_prefix=dict(img_path='train/palsar', seg_map_path='train/palsar')`` for training and
    ``data_prefix=dict(img_path='test/palsar/sat', seg_map_path='test/palsar/gt')`` for testing.
    """

    METAINFO = dict(classes=('background', 'oil_spill'), palette=[[0, 0, 0], [255, 255, 255]])

    def __init__(self, img_suffix: str = '_sat.jpg', seg_map_suffix: str = '_mask.png', threshold: int = 128,
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, label_format='threshold',
                         threshold=threshold, **kwargs)
