"""Tests of SAR-JointNet: architecture, exchange, training stages, state and sampling."""
import warnings

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.runner.checkpoint import load_state_dict as mmengine_load_state_dict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from projects.sar_oilspill.models.generators import (TINY_UNET_CFG, DiffusionUNet, JointUNet,
                                                     SARJointNet)

torch.set_num_threads(1)  # tiny models: 1 thread avoids contention on the shared 2-core box
B_FACTOR = 0.45


def make_model(stage=1, num_classes=2, b=B_FACTOR, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = SARJointNet(balancing_factor=b, num_classes=num_classes, unet=TINY_UNET_CFG,
                        test_cfg=dict(num_inference_steps=3), **kwargs)
    if stage >= 2:
        model.init_label_net_from_sar_net()
        model.set_stage(stage)
    return model


def make_batch(n=2, h=32, w=32, channels=3, num_classes=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (channels, h, w), generator=g, dtype=torch.uint8) for _ in range(n)]
    samples = []
    for _ in range(n):
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, h, w), generator=g))
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed_names(model, before):
    return {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}


def names_under(model, *prefixes):
    return {n for n, _ in model.named_parameters() if n.startswith(prefixes)}


def exchange_parameters(model):
    return list(model.joint.exchange_to_sar.parameters()) + list(model.joint.exchange_to_label.parameters())


def perturb_(module, scale=0.05, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


# ---------------------------------------------------------------- architecture
def test_diffusion_unet_equals_diffusers_unet2dmodel():
    from diffusers import UNet2DModel
    torch.manual_seed(0)
    ref = UNet2DModel(sample_size=32, in_channels=1, out_channels=1, block_out_channels=(16, 32),
                      layers_per_block=1, down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
                      up_block_types=('AttnUpBlock2D', 'UpBlock2D'), norm_num_groups=8,
                      attention_head_dim=8)
    net = DiffusionUNet(1, 1, **TINY_UNET_CFG)
    net.load_state_dict(ref.state_dict(), strict=True)  # same modules, same names
    x, t = torch.randn(2, 1, 32, 32), torch.tensor([3, 700])
    torch.testing.assert_close(net(x, t), ref(x, t).sample, rtol=0, atol=1e-6)


def test_skip_channels_and_odd_sizes():
    torch.manual_seed(0)
    net = DiffusionUNet(2, 2, block_out_channels=(8, 16, 16), layers_per_block=2,
                        attention_resolutions=(8, ), sample_size=32, norm_num_groups=4,
                        attention_head_dim=8)
    assert net.attention_levels == (False, False, True)
    x = torch.randn(1, 2, 95, 27)
    emb = net.embed_timesteps(10, 1, x.dtype, x.device)
    skips, mid = net.encode(x, emb)
    assert [s.shape[1] for s in skips] == net.skip_channels == [8, 8, 8, 8, 16, 16, 16, 16, 16]
    assert mid.shape == (1, 16, 24, 7)
    out = net.decode(skips, mid, emb)
    assert out.shape == (1, 2, 95, 27) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match='attention_resolutions'):
        DiffusionUNet(1, 1, block_out_channels=(8, 16), attention_resolutions=(12, ), sample_size=32,
                      norm_num_groups=4, attention_head_dim=8)


def test_joint_forward_shapes_odd_size_and_zero_init_equality():
    torch.manual_seed(0)
    joint = JointUNet(1, 3, TINY_UNET_CFG)
    x_img, x_lbl, t = torch.randn(2, 1, 95, 27), torch.randn(2, 3, 95, 27), torch.tensor([5, 900])
    out_img, out_lbl = joint(x_img, x_lbl, t)
    assert out_img.shape == (2, 1, 95, 27) and out_lbl.shape == (2, 3, 95, 27)
    assert torch.isfinite(out_img).all() and torch.isfinite(out_lbl).all()
    # zero-initialised exchange: the joint image output IS SAR-Net's output
    assert torch.equal(out_img, joint.sar_net(x_img, t))
    assert torch.equal(out_lbl, joint.label_net(x_lbl, t))
    # ... and it is the exchange that carries the information once it is non-zero
    perturb_(joint.exchange_to_sar)
    assert not torch.allclose(joint(x_img, x_lbl, t)[0], joint.sar_net(x_img, t))


def test_init_label_net_from_sar_net_copies_all_but_in_out_layers():
    model = make_model(num_classes=3)
    perturb_(model.sar_net)  # pretend stage 1 trained SAR-Net
    perturb_(model.joint.exchange_to_label, seed=2)  # and that the exchange is non-zero
    ids_before = {n: id(p) for n, p in model.named_parameters()}
    old_conv_in = model.label_net.conv_in.weight.detach().clone()
    model.init_label_net_from_sar_net()
    assert {n: id(p) for n, p in model.named_parameters()} == ids_before  # in place
    sar_sd, lbl_sd = model.sar_net.state_dict(), model.label_net.state_dict()
    assert sar_sd.keys() == lbl_sd.keys()
    for k in sar_sd:
        if k.startswith(('conv_in.', 'conv_out.')):
            assert lbl_sd[k].shape != sar_sd[k].shape or not torch.equal(lbl_sd[k], sar_sd[k]), k
        else:
            assert torch.equal(lbl_sd[k], sar_sd[k]), k
    assert model.label_net.conv_in.weight.shape == (16, 3, 3, 3)
    assert model.label_net.conv_out.weight.shape == (3, 16, 3, 3)
    assert not torch.equal(model.label_net.conv_in.weight, old_conv_in)  # re-initialised
    for p in exchange_parameters(model):
        assert not p.any()


def test_stage2_start_image_output_equals_stage1_sar_net():
    model = make_model(stage=1)
    # one real stage-1 step so that SAR-Net differs from its initialisation
    ow = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-2))
    model.train_step(make_batch(), ow)
    x_img, t = torch.randn(2, 1, 32, 32), torch.tensor([10, 600])
    with torch.no_grad():
        stage1_out = model.denoise(x_img, None, t)[0]
        model.init_label_net_from_sar_net()
        model.set_stage(2)
        x_lbl = torch.randn(2, 2, 32, 32)
        joint_img, logits = model.denoise(x_img, x_lbl, t)
    assert torch.equal(joint_img, stage1_out)
    assert logits.shape == (2, 2, 32, 32)


# ---------------------------------------------------------------- stages
def test_stage1_step_grads_only_in_sar_net():
    model = make_model(stage=1)
    sar = names_under(model, 'joint.sar_net.')
    assert {n for n, _ in model.named_trainable_parameters()} == sar
    before = snapshot(model)
    ow = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1))
    batch = make_batch(h=19, w=27)
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_image'} and torch.isfinite(losses['loss_image'])
    losses['loss_image'].backward()
    for n, p in model.named_parameters():
        if n in sar:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
        else:
            assert p.grad is None, n
    ow.step()
    assert changed_names(model, before) == sar


def test_stage2_step_updates_only_label_net_and_exchange():
    model = make_model(stage=2)
    trainable = names_under(model, 'joint.label_net.', 'joint.exchange_to_sar.', 'joint.exchange_to_label.')
    assert {n for n, _ in model.named_trainable_parameters()} == trainable
    expected_ids = {id(p) for n, p in model.named_parameters() if n in trainable}
    assert set(map(id, model.trainable_parameters())) == expected_ids
    before = snapshot(model)
    ow = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1))
    log_vars = model.train_step(make_batch(h=19, w=27), ow)
    assert {'loss', 'loss_image', 'loss_label'} <= set(log_vars)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log_vars.values())
    assert changed_names(model, before) == trainable
    # the exchange is now live in both directions
    x_img, x_lbl, t = torch.randn(1, 1, 32, 32), torch.randn(1, 2, 32, 32), torch.tensor([300])
    with torch.no_grad():
        a_img, a_lbl = model.denoise(x_img, x_lbl, t)
        b_img, _ = model.denoise(x_img, -x_lbl, t)
        _, c_lbl = model.denoise(-x_img, x_lbl, t)
    assert not torch.allclose(a_img, b_img) and not torch.allclose(a_lbl, c_lbl)


def test_stage3_every_parameter_gets_a_gradient():
    model = make_model(stage=3)
    assert all(p.requires_grad for p in model.parameters())
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    sum(losses.values()).backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n


def test_set_stage_validation_and_warning():
    model = make_model(stage=1)
    with pytest.raises(ValueError, match='stage'):
        model.set_stage(4)
    with pytest.warns(UserWarning, match='init_label_net_from_sar_net'):
        model.set_stage(2)
    model.init_label_net_from_sar_net()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        model.set_stage(3)


def test_stage_is_restored_from_checkpoint():
    src = make_model(stage=2)
    src.set_stage(3)
    src.set_stage(2)
    state = src.state_dict()
    assert int(state['training_stage']) == 2
    for loader in (lambda m, sd: m.load_state_dict(sd), mmengine_load_state_dict):
        dst = make_model(stage=1, b=0.3, seed=5)
        loader(dst, state)
        assert dst.stage == 2
        assert dst.balancing_factor == pytest.approx(B_FACTOR)
        assert bool(dst.label_net_initialized)
        assert {n for n, _ in dst.named_trainable_parameters()} == \
            {n for n, _ in src.named_trainable_parameters()}


def test_init_weights_keeps_exchange_zero():
    model = make_model(stage=1)
    model.init_weights()
    for p in exchange_parameters(model):
        assert not p.any()


# ---------------------------------------------------------------- data / losses
def test_scaled_one_hot_mask_hand_example():
    model = make_model(b=0.4)
    labels = torch.tensor([[[0, 1], [255, 1]]])
    expected = torch.tensor([[[[0.4, -0.4], [-0.4, -0.4]], [[-0.4, 0.4], [-0.4, 0.4]]]])
    torch.testing.assert_close(model.labels_to_scaled_mask(labels), expected)


def test_same_timestep_independent_noise(monkeypatch):
    model = make_model(stage=2)
    calls = []
    orig = model.train_scheduler.add_noise

    def spy(x0, noise, t):
        calls.append((x0.clone(), noise.clone(), t.clone()))
        return orig(x0, noise, t)

    monkeypatch.setattr(model.train_scheduler, 'add_noise', spy)
    data = model.data_preprocessor(make_batch(n=3), True)
    model(**data, mode='loss')
    (x_img, n_img, t_img), (x_lbl, n_lbl, t_lbl) = calls
    assert torch.equal(t_img, t_lbl) and t_img.shape == (3, )
    assert not torch.allclose(n_img[:, :1], n_lbl[:, :1])
    # the label branch gets b * (2 * onehot - 1)  (Eq. 1)
    labels = torch.stack([ds.gt_sem_seg.data[0] for ds in data['data_samples']])
    assert torch.equal(x_lbl.argmax(1), labels)
    torch.testing.assert_close(x_lbl.abs(), torch.full_like(x_lbl, B_FACTOR))
    torch.testing.assert_close(x_lbl.sum(1), torch.zeros_like(x_lbl[:, 0]))  # K = 2: b + (-b)
    torch.testing.assert_close(x_img, data['inputs'].mean(1, keepdim=True))


def test_loss_matches_hand_mse_and_ce(monkeypatch):
    model = make_model(stage=2)
    captured = {}
    orig = model.denoise

    def spy(xt_img, xt_lbl, t):
        out = orig(xt_img, xt_lbl, t)
        captured['out'] = out
        return out

    monkeypatch.setattr(model, 'denoise', spy)
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    pred_img, logits = captured['out']
    x0 = data['inputs'].mean(1, keepdim=True)
    labels = torch.stack([ds.gt_sem_seg.data[0] for ds in data['data_samples']])
    mse = ((pred_img - x0)**2).mean()
    logp = torch.log_softmax(logits, 1)
    ce = -logp.gather(1, labels[:, None]).mean()
    torch.testing.assert_close(losses['loss_image'], mse)
    torch.testing.assert_close(losses['loss_label'], ce)


def test_gray_rgb_inputs_equivalent_and_input_checks():
    model = make_model(stage=1)
    gray = torch.rand(2, 1, 16, 16) * 2 - 1
    torch.manual_seed(3)
    out1 = model(gray.repeat(1, 3, 1, 1), mode='tensor')
    torch.manual_seed(3)
    out2 = model(gray, mode='tensor')
    assert set(out1) == {'image', 'timesteps'}
    torch.testing.assert_close(out1['image'], out2['image'])
    with pytest.raises(ValueError, match=r'\[-1, 1\]'):
        model(gray * 100, mode='loss')
    model.init_label_net_from_sar_net()
    model.set_stage(2)
    with pytest.raises(ValueError, match='gt_sem_seg'):
        model(gray, None, mode='loss')
    bad = make_batch(h=16, w=16, num_classes=5)
    with pytest.raises(ValueError, match='gt_sem_seg values'):
        model(gray, bad['data_samples'], mode='loss')
    out = model(gray, make_batch(h=16, w=16)['data_samples'], mode='tensor')
    assert out['logits'].shape == (2, 2, 16, 16)


def test_stacked_uint8_batch_and_registry_build():
    model = MODELS.build(dict(type='SARJointNet', balancing_factor=0.5, num_classes=2,
                              unet=TINY_UNET_CFG, stage=1))
    assert isinstance(model, SARJointNet) and model.stage == 1
    batch = make_batch(channels=1)
    batch['inputs'] = torch.stack(batch['inputs'])
    ow = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    log_vars = model.train_step(batch, ow)
    assert 'loss_image' in log_vars


# ---------------------------------------------------------------- sampling
def test_sample_per_seed_determinism_and_outputs():
    model = make_model(stage=2)
    perturb_(model.joint.exchange_to_sar)  # make the branches interact
    perturb_(model.joint.exchange_to_label, seed=3)
    model.eval()
    both = model.sample(seeds=[5, 7], num_inference_steps=4)
    alone = model.sample(seeds=[7], num_inference_steps=4)
    assert both.image.shape == (2, 1, 32, 32) and both.logits.shape == (2, 2, 32, 32)
    assert both.image.min() >= -1 and both.image.max() <= 1
    assert torch.isfinite(both.logits).all()
    torch.testing.assert_close(both.image[1:], alone.image, rtol=0, atol=1e-5)
    torch.testing.assert_close(both.logits[1:], alone.logits, rtol=0, atol=1e-5)
    assert not torch.allclose(both.image[0], both.image[1])
    again = model.sample(seeds=[5, 7], num_inference_steps=4)
    assert torch.equal(again.image, both.image) and torch.equal(again.logits, both.logits)
    eta = model.sample(seeds=[7, 5], num_inference_steps=4, eta=1.0)
    eta_alone = model.sample(seeds=[5], num_inference_steps=4, eta=1.0)
    torch.testing.assert_close(eta.image[1:], eta_alone.image, rtol=0, atol=1e-5)


def test_sample_returns_last_evaluation_logits(monkeypatch):
    model = make_model(stage=2)
    seen = []
    orig = model.denoise

    def spy(xt_img, xt_lbl, t):
        out = orig(xt_img, xt_lbl, t)
        seen.append((int(t[0]), out[1].clone()))
        return out

    monkeypatch.setattr(model, 'denoise', spy)
    res = model.sample(num_samples=2, num_inference_steps=5, size=(16, 24))
    assert [t for t, _ in seen] == [999, 799, 599, 399, 199]
    assert torch.equal(res.logits, seen[-1][1])
    assert res.image.shape == (2, 1, 16, 24)


def test_stage1_sampling_is_image_only_and_predict_mode():
    model = make_model(stage=1)
    res = model.sample(num_samples=1, num_inference_steps=2)
    assert res.logits is None and res.image.shape == (1, 1, 32, 32)
    with pytest.raises(ValueError):
        model.sample(num_samples=3, seeds=[1, 2])

    model = make_model(stage=2)
    model.eval()
    samples = [SegDataSample(metainfo=dict(seed=s)) for s in (11, 12)]
    batch = dict(inputs=[torch.zeros(1, 32, 32, dtype=torch.uint8)] * 2, data_samples=samples)
    outs = model.test_step(batch)
    ref = model.sample(seeds=[11, 12])
    assert len(outs) == 2
    for i, ds in enumerate(outs):
        torch.testing.assert_close(ds.gen_image.data, ref.image[i])
        torch.testing.assert_close(ds.seg_logits.data, ref.logits[i])
        assert torch.equal(ds.pred_sem_seg.data, ref.logits[i].argmax(0, keepdim=True))


# ---------------------------------------------------------------- mmengine Runner
class _ToySARSet(torch.utils.data.Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=torch.randint(0, 2, (1, 32, 32), generator=g))
        img = torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)
        return dict(inputs=img, data_samples=ds)


def test_runner_train_and_resume_restores_stage(tmp_path):
    from mmengine.runner import Runner

    def make_runner(stage, max_iters, resume):
        return Runner(
            model=dict(type='SARJointNet', balancing_factor=0.43, unet=TINY_UNET_CFG, stage=stage),
            work_dir=str(tmp_path),
            train_dataloader=dict(dataset=_ToySARSet(), sampler=dict(type='DefaultSampler', shuffle=True),
                                  batch_size=2, collate_fn=dict(type='pseudo_collate'), num_workers=0),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-4)),
            default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook', interval=2, by_epoch=False)),
            resume=resume, default_scope='mmseg', log_level='WARNING',
            experiment_name=f'sar_jointnet_test_{max_iters}')

    runner = make_runner(stage=1, max_iters=2, resume=False)
    runner.model.init_label_net_from_sar_net()
    runner.model.set_stage(2)
    sar_before = {k: v.clone() for k, v in runner.model.sar_net.state_dict().items()}
    runner.train()
    for k, v in runner.model.sar_net.state_dict().items():
        assert torch.equal(v, sar_before[k]), k  # stage 2: SAR-Net frozen
    assert (tmp_path / 'iter_2.pth').is_file()
    resumed = make_runner(stage=1, max_iters=3, resume=True)  # config says 1, checkpoint says 2
    resumed.train()
    assert resumed.iter == 3 and resumed.model.stage == 2
    assert not any(p.requires_grad for p in resumed.model.sar_net.parameters())


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_stage3_mixed_precision_finite(dtype):
    """Forward under CPU autocast (as ``--amp``), backward outside it: finite loss and
    gradients for every parameter."""
    model = make_model(stage=3)
    data = model.data_preprocessor(make_batch(), True)
    with torch.autocast('cpu', dtype=dtype):
        losses = model(**data, mode='loss')
    loss = sum(losses.values())
    assert torch.isfinite(loss)
    loss.backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
