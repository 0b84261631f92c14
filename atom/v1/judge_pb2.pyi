from atom.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ComposePromptsRequest(_message.Message):
    __slots__ = ("tasks", "per_task", "seed", "backend", "llm_model")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    PER_TASK_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    LLM_MODEL_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedScalarFieldContainer[str]
    per_task: int
    seed: int
    backend: str
    llm_model: str
    def __init__(self, tasks: _Optional[_Iterable[str]] = ..., per_task: _Optional[int] = ..., seed: _Optional[int] = ..., backend: _Optional[str] = ..., llm_model: _Optional[str] = ...) -> None: ...

class ComposePromptsResponse(_message.Message):
    __slots__ = ("prompts",)
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    prompts: _containers.RepeatedCompositeFieldContainer[_common_pb2.Prompt]
    def __init__(self, prompts: _Optional[_Iterable[_Union[_common_pb2.Prompt, _Mapping]]] = ...) -> None: ...

class JudgeConfig(_message.Message):
    __slots__ = ("backend", "model", "form", "interval", "budget_usd", "votes", "vote_temperature", "response_format", "batch_api")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FORM_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    VOTE_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    BATCH_API_FIELD_NUMBER: _ClassVar[int]
    backend: str
    model: str
    form: str
    interval: int
    budget_usd: float
    votes: int
    vote_temperature: float
    response_format: str
    batch_api: bool
    def __init__(self, backend: _Optional[str] = ..., model: _Optional[str] = ..., form: _Optional[str] = ..., interval: _Optional[int] = ..., budget_usd: _Optional[float] = ..., votes: _Optional[int] = ..., vote_temperature: _Optional[float] = ..., response_format: _Optional[str] = ..., batch_api: _Optional[bool] = ...) -> None: ...

class ScoreItem(_message.Message):
    __slots__ = ("item_id", "prompt", "motion", "images")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MOTION_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    prompt: _common_pb2.Prompt
    motion: _common_pb2.ArtifactRef
    images: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArtifactRef]
    def __init__(self, item_id: _Optional[str] = ..., prompt: _Optional[_Union[_common_pb2.Prompt, _Mapping]] = ..., motion: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., images: _Optional[_Iterable[_Union[_common_pb2.ArtifactRef, _Mapping]]] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("items", "judge")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoreItem]
    judge: JudgeConfig
    def __init__(self, items: _Optional[_Iterable[_Union[ScoreItem, _Mapping]]] = ..., judge: _Optional[_Union[JudgeConfig, _Mapping]] = ...) -> None: ...

class Judgement(_message.Message):
    __slots__ = ("item_id", "ok", "score", "rationale", "judge_id", "prompt_tokens", "completion_tokens", "cost_usd", "cache_hit", "error", "record", "agreement", "vote_entropy", "votes")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    JUDGE_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    VOTE_ENTROPY_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    ok: bool
    score: float
    rationale: str
    judge_id: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cache_hit: bool
    error: str
    record: _common_pb2.ArtifactRef
    agreement: float
    vote_entropy: float
    votes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, item_id: _Optional[str] = ..., ok: _Optional[bool] = ..., score: _Optional[float] = ..., rationale: _Optional[str] = ..., judge_id: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., cache_hit: _Optional[bool] = ..., error: _Optional[str] = ..., record: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., agreement: _Optional[float] = ..., vote_entropy: _Optional[float] = ..., votes: _Optional[_Iterable[int]] = ...) -> None: ...

class EstimateRequest(_message.Message):
    __slots__ = ("items", "judge", "so_far")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    SO_FAR_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoreItem]
    judge: JudgeConfig
    so_far: JudgeEstimate
    def __init__(self, items: _Optional[_Iterable[_Union[ScoreItem, _Mapping]]] = ..., judge: _Optional[_Union[JudgeConfig, _Mapping]] = ..., so_far: _Optional[_Union[JudgeEstimate, _Mapping]] = ...) -> None: ...

class JudgeEstimate(_message.Message):
    __slots__ = ("backend", "model", "detail", "votes", "items", "invalid", "questions", "cached", "to_ask", "images", "images_min", "images_max", "image_sizes", "image_tokens", "text_tokens", "input_tokens", "output_tokens_expected", "output_tokens_bound", "output_basis", "output_tokens", "sync_usd", "sync_usd_bound", "batch_usd", "batch_usd_bound", "batch_price_factor", "image_rule", "text_rule", "cached_answers", "cached_output_tokens", "text")
    class ImageSizesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    INVALID_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    TO_ASK_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    IMAGES_MIN_FIELD_NUMBER: _ClassVar[int]
    IMAGES_MAX_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_BOUND_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BASIS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SYNC_USD_FIELD_NUMBER: _ClassVar[int]
    SYNC_USD_BOUND_FIELD_NUMBER: _ClassVar[int]
    BATCH_USD_FIELD_NUMBER: _ClassVar[int]
    BATCH_USD_BOUND_FIELD_NUMBER: _ClassVar[int]
    BATCH_PRICE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    IMAGE_RULE_FIELD_NUMBER: _ClassVar[int]
    TEXT_RULE_FIELD_NUMBER: _ClassVar[int]
    CACHED_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    CACHED_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    backend: str
    model: str
    detail: str
    votes: int
    items: int
    invalid: int
    questions: int
    cached: int
    to_ask: int
    images: int
    images_min: int
    images_max: int
    image_sizes: _containers.ScalarMap[str, int]
    image_tokens: int
    text_tokens: int
    input_tokens: int
    output_tokens_expected: int
    output_tokens_bound: int
    output_basis: str
    output_tokens: int
    sync_usd: float
    sync_usd_bound: float
    batch_usd: float
    batch_usd_bound: float
    batch_price_factor: float
    image_rule: str
    text_rule: str
    cached_answers: int
    cached_output_tokens: int
    text: str
    def __init__(self, backend: _Optional[str] = ..., model: _Optional[str] = ..., detail: _Optional[str] = ..., votes: _Optional[int] = ..., items: _Optional[int] = ..., invalid: _Optional[int] = ..., questions: _Optional[int] = ..., cached: _Optional[int] = ..., to_ask: _Optional[int] = ..., images: _Optional[int] = ..., images_min: _Optional[int] = ..., images_max: _Optional[int] = ..., image_sizes: _Optional[_Mapping[str, int]] = ..., image_tokens: _Optional[int] = ..., text_tokens: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens_expected: _Optional[int] = ..., output_tokens_bound: _Optional[int] = ..., output_basis: _Optional[str] = ..., output_tokens: _Optional[int] = ..., sync_usd: _Optional[float] = ..., sync_usd_bound: _Optional[float] = ..., batch_usd: _Optional[float] = ..., batch_usd_bound: _Optional[float] = ..., batch_price_factor: _Optional[float] = ..., image_rule: _Optional[str] = ..., text_rule: _Optional[str] = ..., cached_answers: _Optional[int] = ..., cached_output_tokens: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class CalibrationCase(_message.Message):
    __slots__ = ("item_id", "prompt", "motion", "truth", "source", "renders")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MOTION_FIELD_NUMBER: _ClassVar[int]
    TRUTH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RENDERS_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    prompt: _common_pb2.Prompt
    motion: _common_pb2.ArtifactRef
    truth: int
    source: str
    renders: _containers.RepeatedCompositeFieldContainer[CaseRender]
    def __init__(self, item_id: _Optional[str] = ..., prompt: _Optional[_Union[_common_pb2.Prompt, _Mapping]] = ..., motion: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., truth: _Optional[int] = ..., source: _Optional[str] = ..., renders: _Optional[_Iterable[_Union[CaseRender, _Mapping]]] = ...) -> None: ...

class CaseRender(_message.Message):
    __slots__ = ("form", "interval", "images")
    FORM_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    form: str
    interval: int
    images: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArtifactRef]
    def __init__(self, form: _Optional[str] = ..., interval: _Optional[int] = ..., images: _Optional[_Iterable[_Union[_common_pb2.ArtifactRef, _Mapping]]] = ...) -> None: ...

class CalibrationCasesRequest(_message.Message):
    __slots__ = ("tasks", "n", "seed", "human_labels")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    HUMAN_LABELS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedScalarFieldContainer[str]
    n: int
    seed: int
    human_labels: str
    def __init__(self, tasks: _Optional[_Iterable[str]] = ..., n: _Optional[int] = ..., seed: _Optional[int] = ..., human_labels: _Optional[str] = ...) -> None: ...

class CalibrationCasesResponse(_message.Message):
    __slots__ = ("cases",)
    CASES_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[CalibrationCase]
    def __init__(self, cases: _Optional[_Iterable[_Union[CalibrationCase, _Mapping]]] = ...) -> None: ...

class CalibrationSetting(_message.Message):
    __slots__ = ("form", "interval")
    FORM_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    form: str
    interval: int
    def __init__(self, form: _Optional[str] = ..., interval: _Optional[int] = ...) -> None: ...

class CalibrateRequest(_message.Message):
    __slots__ = ("cases", "settings", "judge")
    CASES_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[CalibrationCase]
    settings: _containers.RepeatedCompositeFieldContainer[CalibrationSetting]
    judge: JudgeConfig
    def __init__(self, cases: _Optional[_Iterable[_Union[CalibrationCase, _Mapping]]] = ..., settings: _Optional[_Iterable[_Union[CalibrationSetting, _Mapping]]] = ..., judge: _Optional[_Union[JudgeConfig, _Mapping]] = ...) -> None: ...

class CalibrationRow(_message.Message):
    __slots__ = ("task", "setting", "n", "scored", "errors", "exact", "within_one", "kappa", "labels", "confusion", "cost_usd", "kinematic_exact", "kinematic_truth")
    TASK_FIELD_NUMBER: _ClassVar[int]
    SETTING_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    SCORED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    WITHIN_ONE_FIELD_NUMBER: _ClassVar[int]
    KAPPA_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CONFUSION_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    KINEMATIC_EXACT_FIELD_NUMBER: _ClassVar[int]
    KINEMATIC_TRUTH_FIELD_NUMBER: _ClassVar[int]
    task: str
    setting: str
    n: int
    scored: int
    errors: int
    exact: float
    within_one: float
    kappa: float
    labels: _containers.RepeatedScalarFieldContainer[int]
    confusion: _containers.RepeatedScalarFieldContainer[int]
    cost_usd: float
    kinematic_exact: float
    kinematic_truth: float
    def __init__(self, task: _Optional[str] = ..., setting: _Optional[str] = ..., n: _Optional[int] = ..., scored: _Optional[int] = ..., errors: _Optional[int] = ..., exact: _Optional[float] = ..., within_one: _Optional[float] = ..., kappa: _Optional[float] = ..., labels: _Optional[_Iterable[int]] = ..., confusion: _Optional[_Iterable[int]] = ..., cost_usd: _Optional[float] = ..., kinematic_exact: _Optional[float] = ..., kinematic_truth: _Optional[float] = ...) -> None: ...

class CalibrateResponse(_message.Message):
    __slots__ = ("judge_id", "kinematic_id", "rows", "cost_usd", "text", "record")
    JUDGE_ID_FIELD_NUMBER: _ClassVar[int]
    KINEMATIC_ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    judge_id: str
    kinematic_id: str
    rows: _containers.RepeatedCompositeFieldContainer[CalibrationRow]
    cost_usd: float
    text: str
    record: _common_pb2.ArtifactRef
    def __init__(self, judge_id: _Optional[str] = ..., kinematic_id: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[CalibrationRow, _Mapping]]] = ..., cost_usd: _Optional[float] = ..., text: _Optional[str] = ..., record: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...
