# A CPU-sized SAROSS-Net (same components as the paper's model, narrower and shallower): MambaVision with widths
# 32-256 and depths (1, 1, 2, 2), CAFT skip grid, small decoder. For the demo, smoke runs and CPU comparisons.
_base_ = './saross_mambavision_b.py'
model = dict(
    backbone=dict(arch=dict(_delete_=True, dim=32, in_dim=16, depths=(1, 1, 2, 2), num_heads=(1, 2, 4, 8),
                            window_size=(8, 8, 8, 4), layer_scale=None),
                  window_size=None,  # the arch's windows
                  drop_path_rate=0.0, init_cfg=None),  # from scratch (no checkpoint of this size exists)
    decode_head=dict(in_channels=[32, 64, 128, 256], decoder_channels=(128, 64, 32, 16, 16),
                     # full-width CAFT attention: at these widths the grid is small anyway (README results)
                     skip_cfg=dict(attn_reduction=1)))
