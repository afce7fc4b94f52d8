"""Oil Spill Detection (OSD) dataset of Krestenitis et al., Remote Sensing 2019."""
import os.path as osp
import warnings

from mmseg.registry import DATASETS

from .base_oilspill import OilSpillBaseDataset


@DATASETS.register_module()
class OSDDataset(OilSpillBaseDataset):
    """OSD: 1002 train / 110 test Sentinel-1 images of 1250x650 pixels, five classes.

    On-disk layout (as distributed by its authors)::

        data/osd
        ├── train
        │   ├── images      img_XXXX.jpg   grayscale saved as 3-channel JPEG
        │   ├── labels      img_XXXX.png   RGB colour-coded labels
        │   └── labels_1D   img_XXXX.png   single-channel class indices 0..4
        └── test
            └── images / labels / labels_1D

    Label values: 0 sea surface (0,0,0); 1 oil spill (0,255,255); 2 look-alike (255,0,0); 3 ship (153,76,0);
    4 land (0,153,0). ``labels_1D`` is read when it exists; otherwise the RGB ``labels`` folder next to it is
    converted exactly (a colour outside the palette is an error naming the file and colour).

    Args:
        data_prefix: ``dict(img_path='train/images', seg_map_path='train/labels_1D')``.
        rgb_fallback: Use the sibling ``labels`` folder (palette decoding) when ``seg_map_path`` does not exist.
    """

    METAINFO = dict(classes=('sea_surface', 'oil_spill', 'look_alike', 'ship', 'land'),
                    palette=[[0, 0, 0], [0, 255, 255], [255, 0, 0], [153, 76, 0], [0, 153, 0]])

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '.png', rgb_fallback: bool = True,
                 label_format: str = 'index', **kwargs) -> None:
        self.rgb_fallback = rgb_fallback
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, label_format=label_format,
                         **kwargs)

    def load_data_list(self):
        seg_dir = self.data_prefix.get('seg_map_path')
        if self.rgb_fallback and seg_dir and not osp.isdir(seg_dir) and osp.basename(seg_dir) == 'labels_1D':
            rgb_dir = osp.join(osp.dirname(seg_dir), 'labels')
            if osp.isdir(rgb_dir):
                warnings.warn(f'OSDDataset: {seg_dir!r} not found; converting RGB labels from {rgb_dir!r}')
                self.data_prefix['seg_map_path'] = rgb_dir
                self.label_format = 'palette'
        return super().load_data_list()
