"""The run API: a run of `llm.generate` as a typed value (`config`), the command line that builds one (`flags`),
what runs it (`run`: `generate_dataset`; `modes`: text and dialogue mode wired from a config), the engine settings
a config implies (`wiring`), the loop that drives results into the output (`loop`), batch mode and the budget
wired from a config (`batching`), dedup (`dedup`), and the features around a run (`plan` and `batch_plan`,
`preview`, `card`).

    from llm.api import RunConfig, generate_dataset
"""
from .config import RunConfig
from .run import Run, agenerate_dataset, generate_dataset, plan_dataset

__all__ = ["Run", "RunConfig", "agenerate_dataset", "generate_dataset", "plan_dataset"]
