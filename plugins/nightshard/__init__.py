"""nightshard: the library behind the pipeline DAGs (config, planning, validation, publishing, cost,
notifications, operators). Modules import torch and pandas never, and pyarrow only inside tasks."""
