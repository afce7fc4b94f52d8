"""Generation of D_aug (SAR tiles + per-pixel logits) with a trained SAR-JointNet (paper Alg. 2, Sec. 3.1)."""
from __future__ import annotations

import hashlib
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import all_gather, barrier, get_dist_info
from mmengine.runner import BaseLoop
from mmengine.utils import ProgressBar
from mmseg.registry import LOOPS

from ..datasets.daug import DAugFolder
from ..visualization.grid import overlay_palette, save_daug_grid
from .model_access import unwrap_jointnet

#: Multiplier of the per-sample seed rule ``seed_i = base_seed * SEED_STRIDE + i`` (a prime, so runs with
#: different base seeds do not share sample seeds for any realistic number of samples).
SEED_STRIDE = 1_000_003

#: Manifest entries that must agree before new samples are added to an existing D_aug folder
#: (:meth:`DAugFolder.check_settings`; the checkpoint is compared separately, by content).
_COMPAT_KEYS = DAugFolder.COMPAT_KEYS


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, read in chunks (a re-trained checkpoint at the same path is told apart)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def sample_seed(base_seed: int, index: int) -> int:
    """Seed of sample ``index`` (each sample's noise comes only from its own generator)."""
    return int(base_seed) * SEED_STRIDE + int(index)


def shard_indices(num_samples: int, rank: int, world_size: int) -> List[int]:
    """Sample indices of one process: ``i % world_size == rank`` (disjoint, together all of ``range(N)``)."""
    if not 0 <= rank < world_size:
        raise ValueError(f'rank {rank} outside [0, {world_size})')
    return list(range(rank, int(num_samples), world_size))


@LOOPS.register_module()
class JointNetGenerationLoop(BaseLoop):
    """Writes ``num_samples`` generated image/logit pairs of a stage-2/3 SAR-JointNet to ``out_dir``.

    Layout, names, atomic writes and the manifest checks: :class:`~projects.sar_oilspill.datasets.daug.DAugFolder`
    (``images/<name>.png``, ``logits/<name>.npy`` float16 ``(K, H, W)``, ``manifest.json``). Sample ``i`` is named
    ``f'{name_prefix}{i:06d}'`` and uses seed ``base_seed * 1000003 + i``: its result does not depend on the
    batch size, the number of processes or on which run produced it.

    * Sharding: process ``r`` of ``W`` generates the indices ``i % W == r``; no two processes write the same file.
    * Resume: samples whose two files exist are skipped (each file is written to a temporary name and renamed,
      so an interrupted run leaves no half pair). Adding samples to an existing folder is allowed only when the
      manifest's settings (checkpoint content by SHA-256, seeds, sampler, size, classes, ``b``) match; otherwise
      it is an error. A smaller ``num_samples`` than the folder holds gives a manifest listing the first
      ``num_samples``, and :class:`DAugDataset` reads exactly those (the other files stay, unused).
    * ``manifest.json`` is written by rank 0 before generation (``complete: false``) and rewritten with
      ``complete: true`` and the sample list when every sample exists.
    * Throughput (samples/s, per process and overall) is logged and returned.

    Args:
        runner (Runner): Runner holding the SARJointNet (checkpoint loaded by the caller, e.g.
            ``tools/generate_daug.py``).
        out_dir (str): D_aug folder.
        num_samples (int): Total number of samples ``N`` over all processes.
        batch_size (int): Samples per sampling call (per process).
        base_seed (int): Base of the per-sample seeds.
        num_inference_steps (int, optional): DDIM steps (default the model's ``test_cfg``, 200).
        eta (float, optional): DDIM eta (default the model's ``test_cfg``, 0).
        size (int | tuple, optional): Tile size ``(H, W)``; default the U-Net ``sample_size``.
        name_prefix (str): Prefix of the sample names.
        checkpoint (str, optional): Recorded in the manifest with its SHA-256 (the SHA-256 is compared on
            resume, so the same file at another path is accepted).
        grid (int): When > 0, rank 0 saves the first ``grid`` samples with label overlays to
            ``<out_dir>/grid.png`` at the end.
        classes (Sequence[str], optional): Class names recorded in the manifest (``tools/generate_daug.py``
            passes those of the config's training set); default ``cfg.metainfo.classes``, else ``class<k>``.
        palette (Sequence, optional): RGB colour per class of the grid's overlays (default: a fixed palette).
    """

    def __init__(self,
                 runner,
                 out_dir: str,
                 num_samples: int,
                 batch_size: int = 8,
                 base_seed: int = 0,
                 num_inference_steps: Optional[int] = None,
                 eta: Optional[float] = None,
                 size: Optional[Union[int, Sequence[int]]] = None,
                 name_prefix: str = 's',
                 checkpoint: Optional[str] = None,
                 grid: int = 0,
                 classes: Optional[Sequence[str]] = None,
                 palette: Optional[Sequence[Sequence[int]]] = None) -> None:
        super().__init__(runner, None)  # the loop reads no data
        if int(num_samples) < 1:
            raise ValueError(f'num_samples must be >= 1, got {num_samples}')
        if int(batch_size) < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if not out_dir:
            raise ValueError('out_dir must be given')
        self.out_dir = out_dir
        self.folder = DAugFolder(out_dir)
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.base_seed = int(base_seed)
        self.num_inference_steps = num_inference_steps
        self.eta = eta
        self.size = None if size is None else ((int(size), ) * 2 if isinstance(size, int) else
                                               tuple(int(s) for s in size))
        self.name_prefix = str(name_prefix)
        self.checkpoint = checkpoint
        self.grid = int(grid)
        self.classes = None if classes is None else [str(c) for c in classes]
        self.palette = None if palette is None else [list(c) for c in palette]

    @property
    def model(self):
        return unwrap_jointnet(self.runner, ('sample', 'stage'), 'JointNetGenerationLoop')

    def sample_name(self, index: int) -> str:
        return DAugFolder.sample_name(index, self.name_prefix)

    # ------------------------------------------------------------------ manifest
    def _settings(self) -> Dict:
        model = self.model
        classes = list(self.classes or (self.runner.cfg.get('metainfo') or {}).get('classes') or
                       [f'class{k}' for k in range(model.num_classes)])
        if len(classes) != model.num_classes:
            raise ValueError(f'{len(classes)} class names {classes} for a model with {model.num_classes} classes')
        size = self.size or tuple(model.sar_net.sample_size)
        return dict(classes=classes, num_classes=model.num_classes,
                    balancing_factor=round(model.balancing_factor, 6), base_seed=self.base_seed,
                    seed_rule=f'seed = base_seed * {SEED_STRIDE} + index',
                    num_inference_steps=int(self.num_inference_steps or model.test_cfg['num_inference_steps']),
                    eta=float(model.test_cfg['eta'] if self.eta is None else self.eta),
                    timestep_spacing=model.test_cfg['timestep_spacing'], size=list(size),
                    checkpoint=self.checkpoint, checkpoint_sha256=self._checkpoint_sha256(),
                    name_prefix=self.name_prefix, model_stage=model.stage,
                    config=getattr(self.runner.cfg, 'filename', None))

    def _checkpoint_sha256(self) -> Optional[str]:
        if not self.checkpoint or not osp.isfile(self.checkpoint):
            return None
        if getattr(self, '_ckpt_sha', None) is None:
            self._ckpt_sha = file_sha256(self.checkpoint)
        return self._ckpt_sha

    def _check_existing(self, settings: Dict) -> None:
        """Refuse an ``out_dir`` holding samples of other settings (:meth:`DAugFolder.check_settings`)."""
        self.folder.check_settings(settings, _COMPAT_KEYS)

    def _write_manifest(self, settings: Dict, complete: bool) -> None:
        manifest = dict(settings, num_samples=self.num_samples, complete=complete)
        if complete:
            manifest['samples'] = [dict(name=self.sample_name(i), index=i, seed=sample_seed(self.base_seed, i))
                                   for i in range(self.num_samples)]
        self.folder.write_manifest(manifest)

    # ------------------------------------------------------------------ run
    def _generate(self, indices: Sequence[int], settings: Dict) -> Tuple[int, float]:
        model = self.model
        rank, _ = get_dist_info()
        bar = ProgressBar(len(indices)) if rank == 0 and indices else None
        done, t0 = 0, time.perf_counter()
        for start in range(0, len(indices), self.batch_size):
            chunk = indices[start:start + self.batch_size]
            seeds = [sample_seed(self.base_seed, i) for i in chunk]
            result = model.sample(seeds=seeds, num_inference_steps=settings['num_inference_steps'],
                                  eta=settings['eta'], size=tuple(settings['size']))
            images = result.image.float().mean(dim=1).cpu().numpy()  # (N, H, W) in [-1, 1]
            logits = result.logits.float().cpu().numpy()
            for j, i in enumerate(chunk):
                if not np.isfinite(logits[j]).all() or not np.isfinite(images[j]).all():
                    raise FloatingPointError(f'sample {self.sample_name(i)} (seed {seeds[j]}) has non-finite '
                                             'values; the checkpoint may be broken')
                self.folder.write_sample(self.sample_name(i), images[j], logits[j])
                done += 1
                if bar is not None:
                    bar.update()
        return done, time.perf_counter() - t0

    def run(self) -> Dict[str, float]:
        """Generate the missing samples of this process's shard; returns throughput figures."""
        model = self.model
        if model.stage < 2:
            raise ValueError('the loaded SAR-JointNet is in stage 1 (SAR-Net only) and has no label branch; '
                             'load a stage-2 or stage-3 checkpoint')
        rank, world_size = get_dist_info()
        settings = self._settings()
        # every process reads the same manifest and reaches the same verdict, so none is left waiting in a barrier
        self._check_existing(settings)
        if rank == 0 and not self.folder.has_manifest():
            self._write_manifest(settings, complete=False)
        barrier()
        mine = shard_indices(self.num_samples, rank, world_size)
        todo = [i for i in mine if not self.folder.has_sample(self.sample_name(i))]
        self.runner.logger.info(f'JointNetGenerationLoop: rank {rank}/{world_size}: {len(mine)} samples in shard, '
                                f'{len(mine) - len(todo)} already present, generating {len(todo)} '
                                f'({settings["num_inference_steps"]} DDIM steps, {tuple(settings["size"])}) '
                                f'into {self.out_dir}')
        was_training = model.training
        model.eval()
        try:
            done, seconds = self._generate(todo, settings)
        finally:
            model.train(was_training)
        rate = done / seconds if seconds > 0 and done else 0.0
        self.runner.logger.info(f'JointNetGenerationLoop: rank {rank} generated {done} samples in {seconds:.1f} s '
                                f'({rate:.3f} samples/s)')
        gathered = all_gather(torch.tensor([float(done), seconds]))  # [tensor] without a process group
        total = sum(float(g[0]) for g in gathered)
        wall = max(float(g[1]) for g in gathered)
        metrics = dict(generated=total, seconds=wall, samples_per_second=total / wall if wall > 0 and total else 0.0)
        # all_gather returned only once every process had written its shard; every process checks, so an
        # error stops them all instead of leaving the others in the final barrier
        missing = [i for i in range(self.num_samples) if not self.folder.has_sample(self.sample_name(i))]
        if missing:
            raise RuntimeError(f'{len(missing)} samples missing after generation (e.g. '
                               f'{self.sample_name(missing[0])}); run again to resume')
        if rank == 0:
            self._write_manifest(settings, complete=True)
            extra = self._unlisted_samples()
            if extra:
                self.runner.logger.warning(
                    f'JointNetGenerationLoop: {self.out_dir} holds {len(extra)} more samples than num_samples='
                    f'{self.num_samples} (e.g. {extra[0]}, from an earlier run); the manifest lists, and '
                    f'DAugDataset reads, only the first {self.num_samples}')
            if self.grid > 0:
                self._save_grid(settings)
            self.runner.logger.info(f'JointNetGenerationLoop: {self.num_samples} samples complete in {self.out_dir} '
                                    f'({metrics["samples_per_second"]:.3f} samples/s over {world_size} processes)')
        barrier()
        return metrics

    def _unlisted_samples(self) -> List[str]:
        """Sample names in ``images/`` of this prefix with an index >= ``num_samples`` (not in the manifest)."""
        return self.folder.unlisted_names(self.name_prefix, self.num_samples)

    def _save_grid(self, settings: Dict) -> None:
        names = [self.sample_name(i) for i in range(min(self.grid, self.num_samples))]
        palette = overlay_palette(self.palette, settings['num_classes'])
        path = save_daug_grid(self.folder, names, palette, osp.join(self.out_dir, 'grid.png'))
        self.runner.logger.info(f'JointNetGenerationLoop: grid of {len(names)} samples saved to {path}')
