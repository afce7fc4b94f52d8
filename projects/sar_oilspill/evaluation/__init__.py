from .oilspill_metric import OilSpillMetric, confusion_to_metrics

__all__ = ['OilSpillMetric', 'confusion_to_metrics']
