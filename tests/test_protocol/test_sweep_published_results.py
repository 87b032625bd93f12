"""The published numbers as data: complete, and consistent with each other
(the per-task numbers give the published group means under the table's
own averaging code)."""
import pytest

from vapt_mm.datasets import VTAB1K_GROUPS, VTAB1K_TASKS
from vapt_mm.protocol.published_results import (PUBLISHED_SUMMARY,
                                                PUBLISHED_VTAB1K_PER_TASK,
                                                SUMMARY_COLUMNS)
from vapt_mm.protocol.results_table import (MethodResults, TaskResult,
                                            group_mean)


def as_method(name):
    tasks = {
        t: TaskResult(t, 'vtab1k', v, 0.0, 5, 5, True, None, 'published')
        for t, v in PUBLISHED_VTAB1K_PER_TASK[name].items()
    }
    return MethodResults(name, '', tasks)


def test_every_method_has_all_tasks_and_columns():
    for per_task in PUBLISHED_VTAB1K_PER_TASK.values():
        assert tuple(per_task) == VTAB1K_TASKS
        assert all(0 < v < 100 for v in per_task.values())
    for summary in PUBLISHED_SUMMARY.values():
        assert tuple(summary) == SUMMARY_COLUMNS


def test_spot_values_from_the_spec():
    assert PUBLISHED_VTAB1K_PER_TASK['VPT-deep']['cifar'] == 78.8
    assert PUBLISHED_VTAB1K_PER_TASK['VPT-shallow']['smallnorb_ele'] == 34.1
    assert PUBLISHED_VTAB1K_PER_TASK['Full']['svhn'] == 87.4
    assert PUBLISHED_SUMMARY['VAPT']['tuned %'] == 0.36


@pytest.mark.parametrize('name', ['VPT-deep', 'Full'])
def test_per_task_numbers_give_the_published_group_means(name):
    method = as_method(name)
    for group, tasks in VTAB1K_GROUPS.items():
        mean = group_mean(method, tasks)
        assert mean.complete
        # per-task numbers are rounded to 0.1, so their mean is within 0.05
        assert mean.mean == pytest.approx(PUBLISHED_SUMMARY[name][group],
                                          abs=0.05)
    # "VTAB mean" is the plain mean of the 19 tasks, not of the groups
    overall = group_mean(method, VTAB1K_TASKS)
    assert overall.mean == pytest.approx(
        PUBLISHED_SUMMARY[name]["VTAB mean"], abs=0.05)
    mean_of_groups = sum(PUBLISHED_SUMMARY[name][g]
                         for g in VTAB1K_GROUPS) / 3
    assert abs(mean_of_groups - PUBLISHED_SUMMARY[name]['VTAB mean']) > 0.5
