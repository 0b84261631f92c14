from atom.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RenderOptions(_message.Message):
    __slots__ = ("form", "interval", "width", "height", "style", "camera")
    FORM_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    form: str
    interval: int
    width: int
    height: int
    style: str
    camera: str
    def __init__(self, form: _Optional[str] = ..., interval: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., style: _Optional[str] = ..., camera: _Optional[str] = ...) -> None: ...

class RenderRequest(_message.Message):
    __slots__ = ("motions", "options")
    MOTIONS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    motions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArtifactRef]
    options: RenderOptions
    def __init__(self, motions: _Optional[_Iterable[_Union[_common_pb2.ArtifactRef, _Mapping]]] = ..., options: _Optional[_Union[RenderOptions, _Mapping]] = ...) -> None: ...

class RenderResult(_message.Message):
    __slots__ = ("motion", "form", "images", "frame_indices", "cached", "render_key")
    MOTION_FIELD_NUMBER: _ClassVar[int]
    FORM_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDICES_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    RENDER_KEY_FIELD_NUMBER: _ClassVar[int]
    motion: _common_pb2.ArtifactRef
    form: str
    images: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArtifactRef]
    frame_indices: _containers.RepeatedScalarFieldContainer[int]
    cached: bool
    render_key: str
    def __init__(self, motion: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., form: _Optional[str] = ..., images: _Optional[_Iterable[_Union[_common_pb2.ArtifactRef, _Mapping]]] = ..., frame_indices: _Optional[_Iterable[int]] = ..., cached: _Optional[bool] = ..., render_key: _Optional[str] = ...) -> None: ...
