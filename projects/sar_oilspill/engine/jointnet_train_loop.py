"""Three-stage training of SAR-JointNet as one mmengine loop (paper Sec. 3.2.2, 4.2)."""
from __future__ import annotations

import copy

from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.dist import all_gather
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import LOOPS
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from .model_access import unwrap_jointnet


def stage_of_iter(iteration: int, stage_iters: Sequence[int]) -> int:
    """Training stage (1, 2 or 3) that iteration ``iteration`` (0-based) belongs to.

    Stages with 0 iterations are skipped; iterations at or past the total stay in the last stage that has any.
    """
    end = 0
    last = 1
    for stage, n in enumerate(stage_iters, start=1):
        if n <= 0:
            continue
        last = stage
        end += n
        if iteration < end:
            return stage
    return last


STAGE3_MARKER = 'stage3'


def resolve_stage_milestones(schedulers, stage_iters: Sequence[int]):
    """Replace the ``milestones='stage3'`` marker of scheduler configs with ``[first iteration of stage 3]``.

    ``schedulers`` is what a runner holds before it builds its schedulers (``None``, a dict or a list of dicts;
    built schedulers pass through unchanged). Returns a new object; the input is not modified. A marked scheduler
    must count iterations (``by_epoch=False``): the stages are counted in iterations.
    """
    if schedulers is None:
        return None
    if isinstance(schedulers, dict) and 'type' not in schedulers:  # one list per optimizer
        return {k: resolve_stage_milestones(v, stage_iters) for k, v in schedulers.items()}
    single = isinstance(schedulers, dict)
    out = []
    for sched in ([schedulers] if single else list(schedulers)):
        if isinstance(sched, dict) and sched.get('milestones') == STAGE3_MARKER:
            if sched.get('by_epoch', True):
                raise ValueError(f"param_scheduler {sched.get('type')} with milestones='{STAGE3_MARKER}' must set "
                                 'by_epoch=False (SAR-JointNet stages are counted in iterations)')
            sched = copy.deepcopy(sched)
            sched['milestones'] = [int(stage_iters[0]) + int(stage_iters[1])]
        out.append(sched)
    return out[0] if single else out


@LOOPS.register_module()
class JointNetTrainLoop(IterBasedTrainLoop):
    """Iteration-based loop that runs SAR-JointNet's three training stages back to back.

    * stage 1 (``stage_iters[0]`` iterations): SAR-Net alone (image L2, Eq. 5);
    * stage 2 (``stage_iters[1]``): Label-Net is initialised from SAR-Net
      (:meth:`SARJointNet.init_label_net_from_sar_net`, exchange layers zero) and trained with the exchange
      layers while SAR-Net is frozen (Eq. 6-7);
    * stage 3 (``stage_iters[2]``): everything, at a lower learning rate.

    The stage-3 learning-rate drop is a parameter scheduler declared in the config
    (``configs/_base_/schedules/jointnet_3stage.py``): a ``MultiStepLR`` whose ``milestones`` is the marker
    ``'stage3'``, which this loop replaces with the first iteration of stage 3 computed from ``stage_iters``, so the
    boundary has one home (``train_cfg.stage_iters``, also when it is changed with ``--cfg-options``) and the drop
    factor another (the scheduler's ``gamma``). The scheduler's state travels in checkpoints as any mmengine
    scheduler's, so ``--resume`` neither repeats nor loses the drop.

    The stage follows from the iteration counter only, so hooks, checkpoints and ``--resume`` work as for any
    mmengine loop: a checkpoint stores the model's stage (a buffer), the optimizer and scheduler states and the
    iteration; on resume the loop recomputes the stage and changes nothing when it already matches. A switch
    happens before the first iteration of a stage (before that iteration's hooks run).
    Under DistributedDataParallel the model is wrapped again whenever the stage it was wrapped for differs from
    the current one (after a switch, and once at the start of a run or resume), because DDP only synchronises
    the parameters that required gradients when it was built.

    The current stage is logged as ``stage`` (message hub scalar ``train/stage``).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): Training data (images with ``gt_sem_seg``; stage 1 ignores the labels).
        stage_iters (Sequence[int]): Iterations of stages 1, 2 and 3 (paper: OSD 50K/250K/100K, SOS
            50K/150K/50K). A stage with 0 iterations is skipped (e.g. ``(0, 0, N)`` fine-tunes a stage-3
            checkpoint loaded with ``load_from``).
        val_begin (int): As :class:`IterBasedTrainLoop`.
        val_interval (int): As :class:`IterBasedTrainLoop`.
        dynamic_intervals (list, optional): As :class:`IterBasedTrainLoop`.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 stage_iters: Sequence[int],
                 val_begin: int = 1,
                 val_interval: int = 1000,
                 dynamic_intervals: Optional[List] = None) -> None:
        stage_iters = tuple(int(n) for n in stage_iters)
        if len(stage_iters) != 3 or min(stage_iters) < 0 or sum(stage_iters) <= 0:
            raise ValueError('stage_iters must give the iterations of the 3 stages (non-negative, total > 0), '
                             f'got {stage_iters}')
        self.stage_iters = stage_iters
        self._wrapped_for_stage: Optional[int] = None
        if runner is not None:
            runner.param_schedulers = resolve_stage_milestones(runner.param_schedulers, stage_iters)
        super().__init__(runner, dataloader, max_iters=sum(stage_iters), val_begin=val_begin,
                         val_interval=val_interval, dynamic_intervals=dynamic_intervals)

    # ------------------------------------------------------------------ helpers
    @property
    def joint_model(self):
        """The (unwrapped) :class:`SARJointNet`."""
        return unwrap_jointnet(self.runner, ('set_stage', 'init_label_net_from_sar_net'), 'JointNetTrainLoop')

    def stage_at(self, iteration: int) -> int:
        """Stage of 0-based iteration ``iteration``."""
        return stage_of_iter(iteration, self.stage_iters)

    def _rewrap_ddp(self) -> None:
        model = self.runner.model
        if not isinstance(model, DistributedDataParallel):
            return
        inner = model.module
        wrapper_cfg = copy.deepcopy(self.runner.cfg.get('model_wrapper_cfg'))
        self.runner.model = None
        del model
        self.runner.model = self.runner.wrap_model(wrapper_cfg, inner)
        self.runner.logger.info('JointNetTrainLoop: model wrapped again for the new stage\'s parameters')

    def _check_replicas_agree(self, when: str) -> None:
        """Under DDP, check that every process holds the same weights (a checksum per process, gathered).

        The checksums are gathered with :func:`mmengine.dist.all_gather`, which moves them to the process group's
        communication device (CUDA under NCCL, CPU under gloo) and back; ``torch.distributed.all_gather`` on CPU
        tensors fails under NCCL ("No backend type associated with device type cpu").
        """
        if not isinstance(self.runner.model, DistributedDataParallel):
            return
        with torch.no_grad():
            params = list(self.joint_model.parameters())
            local = torch.stack([sum(p.double().sum() for p in params),
                                 sum(p.double().abs().sum() for p in params)])
        gathered = [g.cpu() for g in all_gather(local)]
        ref = gathered[0]
        if any(not torch.allclose(g, ref, rtol=1e-9, atol=0) for g in gathered[1:]):
            raise RuntimeError(f'JointNetTrainLoop: model weights differ between processes {when} '
                               f'(checksums {[g.tolist() for g in gathered]}); gradients were not synchronised')
        self.runner.logger.info(f'JointNetTrainLoop: weights identical on all {len(gathered)} processes {when}')

    def _switch_stage(self, new_stage: int) -> None:
        self._check_replicas_agree(f'at the end of stage {self.joint_model.stage}')
        model = self.joint_model
        old_stage = model.stage
        if new_stage >= 2 and not bool(model.label_net_initialized):
            model.init_label_net_from_sar_net()
            self.runner.logger.info('JointNetTrainLoop: Label-Net initialised from SAR-Net '
                                    '(input/output layers re-made for %d classes, exchange layers zeroed)',
                                    model.num_classes)
        model.set_stage(new_stage)
        n_train = sum(p.numel() for p in model.trainable_parameters())
        lr = self.runner.optim_wrapper.optimizer.param_groups[0]['lr']
        self.runner.logger.info('JointNetTrainLoop: iteration %d, stage %d -> %d (%.2f M trainable parameters, '
                                'learning rate %g)', self._iter, old_stage, new_stage, n_train / 1e6, lr)

    def _sync_stage(self) -> None:
        stage = self.stage_at(self._iter)
        if self.joint_model.stage != stage:
            self._switch_stage(stage)
        if self._wrapped_for_stage != stage:
            self._rewrap_ddp()
            self._wrapped_for_stage = stage
        self.runner.message_hub.update_scalar('train/stage', stage)

    # ------------------------------------------------------------------ loop
    def run_iter(self, data_batch: Sequence[dict]) -> None:
        self._sync_stage()
        super().run_iter(data_batch)

    def run(self):
        """Train all stages; the model ends in the stage of the last iteration."""
        self.runner.logger.info('JointNetTrainLoop: stages 1/2/3 = %d/%d/%d iterations (resuming at %d)',
                                *self.stage_iters, self._iter)
        model = super().run()
        self._check_replicas_agree('at the end of training')
        return model
