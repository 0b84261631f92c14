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
