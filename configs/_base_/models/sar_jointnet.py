# SAR-JointNet (paper Sec. 3.2): SAR-Net + Label-Net pixel-space U-Nets (diffusers blocks, DDPM-256 layout,
# ~114 M parameters per branch) exchanging features through zero-initialised convs. Images are mapped to [-1, 1];
# masks are one-hot in {-1, 1} scaled by the balancing factor b (Eq. 1). b is dataset specific: compute it with
#   python tools/compute_balancing_factor.py CONFIG
# and set model.balancing_factor (the leaf configs hold the paper's values).
model = dict(
    type='SARJointNet',
    balancing_factor=0.447,
    num_classes=2,
    image_channels=1,
    unet=dict(
        block_out_channels=(128, 128, 256, 256, 512, 512),
        layers_per_block=2,
        attention_resolutions=(16, ),
        sample_size=256,
        norm_num_groups=32,
        attention_head_dim=64),
    stage=1,
    num_train_timesteps=1000,
    beta_schedule='squaredcos_cap_v2',
    loss_image_weight=1.0,
    loss_label_weight=1.0,
    test_cfg=dict(num_inference_steps=200, eta=0.0, timestep_spacing='trailing'),
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5], std=[127.5], size_divisor=1,
                           pad_val=0, seg_pad_val=255))
