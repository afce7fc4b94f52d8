from .time_budget_hook import TrainTimeBudgetHook

__all__ = ['TrainTimeBudgetHook']
