from atom.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BuildPairsRequest(_message.Message):
    __slots__ = ("dataset", "theta", "no_score_filter", "min_chosen_score", "mixed_size", "seed", "output_prefix")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    THETA_FIELD_NUMBER: _ClassVar[int]
    NO_SCORE_FILTER_FIELD_NUMBER: _ClassVar[int]
    MIN_CHOSEN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MIXED_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    dataset: _common_pb2.ArtifactRef
    theta: float
    no_score_filter: bool
    min_chosen_score: float
    mixed_size: int
    seed: int
    output_prefix: str
    def __init__(self, dataset: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., theta: _Optional[float] = ..., no_score_filter: _Optional[bool] = ..., min_chosen_score: _Optional[float] = ..., mixed_size: _Optional[int] = ..., seed: _Optional[int] = ..., output_prefix: _Optional[str] = ...) -> None: ...

class BuildPairsResponse(_message.Message):
    __slots__ = ("pair_sets", "pairs_per_task", "prompts_per_task", "motions_per_task", "stats")
    class PairsPerTaskEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class PromptsPerTaskEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class MotionsPerTaskEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    PAIR_SETS_FIELD_NUMBER: _ClassVar[int]
    PAIRS_PER_TASK_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_PER_TASK_FIELD_NUMBER: _ClassVar[int]
    MOTIONS_PER_TASK_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    pair_sets: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArtifactRef]
    pairs_per_task: _containers.ScalarMap[str, int]
    prompts_per_task: _containers.ScalarMap[str, int]
    motions_per_task: _containers.ScalarMap[str, int]
    stats: _common_pb2.ArtifactRef
    def __init__(self, pair_sets: _Optional[_Iterable[_Union[_common_pb2.ArtifactRef, _Mapping]]] = ..., pairs_per_task: _Optional[_Mapping[str, int]] = ..., prompts_per_task: _Optional[_Mapping[str, int]] = ..., motions_per_task: _Optional[_Mapping[str, int]] = ..., stats: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class TrainingConfig(_message.Message):
    __slots__ = ("algorithm", "beta", "learning_rate", "batch_size", "epochs", "max_steps", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "seed", "scheduler", "warmup_ratio", "logprobs", "rpo_alpha")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    LORA_R_FIELD_NUMBER: _ClassVar[int]
    LORA_ALPHA_FIELD_NUMBER: _ClassVar[int]
    LORA_DROPOUT_FIELD_NUMBER: _ClassVar[int]
    TARGET_MODULES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    WARMUP_RATIO_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    RPO_ALPHA_FIELD_NUMBER: _ClassVar[int]
    algorithm: str
    beta: float
    learning_rate: float
    batch_size: int
    epochs: int
    max_steps: int
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    scheduler: str
    warmup_ratio: float
    logprobs: str
    rpo_alpha: float
    def __init__(self, algorithm: _Optional[str] = ..., beta: _Optional[float] = ..., learning_rate: _Optional[float] = ..., batch_size: _Optional[int] = ..., epochs: _Optional[int] = ..., max_steps: _Optional[int] = ..., lora_r: _Optional[int] = ..., lora_alpha: _Optional[int] = ..., lora_dropout: _Optional[float] = ..., target_modules: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., scheduler: _Optional[str] = ..., warmup_ratio: _Optional[float] = ..., logprobs: _Optional[str] = ..., rpo_alpha: _Optional[float] = ...) -> None: ...

class PretrainJob(_message.Message):
    __slots__ = ("dataset", "preset", "seed", "time_budget_s")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TIME_BUDGET_S_FIELD_NUMBER: _ClassVar[int]
    dataset: _common_pb2.ArtifactRef
    preset: str
    seed: int
    time_budget_s: float
    def __init__(self, dataset: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., preset: _Optional[str] = ..., seed: _Optional[int] = ..., time_budget_s: _Optional[float] = ...) -> None: ...

class EvaluatorJob(_message.Message):
    __slots__ = ("dataset", "seed", "steps")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    dataset: _common_pb2.ArtifactRef
    seed: int
    steps: int
    def __init__(self, dataset: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., seed: _Optional[int] = ..., steps: _Optional[int] = ...) -> None: ...

class StartTrainingRequest(_message.Message):
    __slots__ = ("base", "pairs", "config", "output_prefix", "pretrain", "evaluator")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PRETRAIN_FIELD_NUMBER: _ClassVar[int]
    EVALUATOR_FIELD_NUMBER: _ClassVar[int]
    base: _common_pb2.ModelRef
    pairs: _common_pb2.ArtifactRef
    config: TrainingConfig
    output_prefix: str
    pretrain: PretrainJob
    evaluator: EvaluatorJob
    def __init__(self, base: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., pairs: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., config: _Optional[_Union[TrainingConfig, _Mapping]] = ..., output_prefix: _Optional[str] = ..., pretrain: _Optional[_Union[PretrainJob, _Mapping]] = ..., evaluator: _Optional[_Union[EvaluatorJob, _Mapping]] = ...) -> None: ...

class JobRef(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class TrainingMetrics(_message.Message):
    __slots__ = ("step", "total_steps", "epoch", "loss", "margin", "accuracy", "learning_rate")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    step: int
    total_steps: int
    epoch: int
    loss: float
    margin: float
    accuracy: float
    learning_rate: float
    def __init__(self, step: _Optional[int] = ..., total_steps: _Optional[int] = ..., epoch: _Optional[int] = ..., loss: _Optional[float] = ..., margin: _Optional[float] = ..., accuracy: _Optional[float] = ..., learning_rate: _Optional[float] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "state", "metrics", "adapter", "error", "resumed", "kind", "output", "figures")
    class FiguresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: _common_pb2.JobState
    metrics: TrainingMetrics
    adapter: _common_pb2.ArtifactRef
    error: str
    resumed: bool
    kind: str
    output: _common_pb2.ArtifactRef
    figures: _containers.ScalarMap[str, float]
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., metrics: _Optional[_Union[TrainingMetrics, _Mapping]] = ..., adapter: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., error: _Optional[str] = ..., resumed: _Optional[bool] = ..., kind: _Optional[str] = ..., output: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., figures: _Optional[_Mapping[str, float]] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job", "message")
    JOB_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    job: Job
    message: str
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...
