from atom.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelSamples(_message.Message):
    __slots__ = ("name", "samples")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    name: str
    samples: _common_pb2.ArtifactRef
    def __init__(self, name: _Optional[str] = ..., samples: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("models", "dataset", "split", "evaluator", "replications", "seed", "output_prefix", "baseline", "protocol", "base_model", "assets")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    EVALUATOR_FIELD_NUMBER: _ClassVar[int]
    REPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    ASSETS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelSamples]
    dataset: str
    split: str
    evaluator: str
    replications: int
    seed: int
    output_prefix: str
    baseline: str
    protocol: str
    base_model: str
    assets: _containers.RepeatedCompositeFieldContainer[_common_pb2.Asset]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelSamples, _Mapping]]] = ..., dataset: _Optional[str] = ..., split: _Optional[str] = ..., evaluator: _Optional[str] = ..., replications: _Optional[int] = ..., seed: _Optional[int] = ..., output_prefix: _Optional[str] = ..., baseline: _Optional[str] = ..., protocol: _Optional[str] = ..., base_model: _Optional[str] = ..., assets: _Optional[_Iterable[_Union[_common_pb2.Asset, _Mapping]]] = ...) -> None: ...

class EvaluationReport(_message.Message):
    __slots__ = ("json", "markdown", "plots", "markdown_text")
    JSON_FIELD_NUMBER: _ClassVar[int]
    MARKDOWN_FIELD_NUMBER: _ClassVar[int]
    PLOTS_FIELD_NUMBER: _ClassVar[int]
    MARKDOWN_TEXT_FIELD_NUMBER: _ClassVar[int]
    json: _common_pb2.ArtifactRef
    markdown: _common_pb2.ArtifactRef
    plots: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArtifactRef]
    markdown_text: str
    def __init__(self, json: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., markdown: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., plots: _Optional[_Iterable[_Union[_common_pb2.ArtifactRef, _Mapping]]] = ..., markdown_text: _Optional[str] = ...) -> None: ...

class EvaluateEvent(_message.Message):
    __slots__ = ("progress", "report")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    progress: _common_pb2.Progress
    report: EvaluationReport
    def __init__(self, progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., report: _Optional[_Union[EvaluationReport, _Mapping]] = ...) -> None: ...
