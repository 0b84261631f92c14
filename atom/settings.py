"""The settings of each service, with their types, allowed values, ranges, defaults and meaning:
one class per service, the one place each default is written.

The pipeline config (atom.pipeline.config) composes these sections; each service fills the
fields a request leaves unset from its own section (services/*/server.py), so a default cannot
differ between the controller, the service and the docs. `configs/default.yaml` lists them all
and a test holds it, the services and the protos to these classes.

Validation is strict: an int field takes no 2.7, a float field no `true`, a choice only one of
its listed values.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Each choice is written once, as a Literal type; its tuple of values (for CLI choices and
# messages) is read back from it.
Task = Literal["integrity", "temporal", "frequency"]
Form = Literal["frame_by_frame", "full_image", "trajectory_image"]
Algorithm = Literal["ipo", "dpo", "kto"]
Logprob = Literal["sum", "mean"]
Judge = Literal["kinematic", "vlm"]
Decoding = Literal["", "constrained", "motiongpt"]
Protocol = Literal["", "motiongpt", "guo"]
Dtype = Literal["fp32", "bf16", "fp16"]
ResponseFormat = Literal["json_schema", "json_object", "none", "guided_json", "structured_outputs"]

TASKS: tuple[Task, ...] = get_args(Task)
FORMS: tuple[Form, ...] = get_args(Form)
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
LOGPROBS: tuple[Logprob, ...] = get_args(Logprob)
JUDGES: tuple[Judge, ...] = get_args(Judge)
DECODINGS: tuple[Decoding, ...] = get_args(Decoding)
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
DTYPES: tuple[Dtype, ...] = get_args(Dtype)
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = get_args(ResponseFormat)


def _store_prefix(value):
    """A store prefix as given (checked like every store key, trailing slash dropped); empty stays empty."""
    if isinstance(value, str) and value:
        from atom.store.base import check_key

        return check_key(value.rstrip("/"))
    return value


StorePrefix = Annotated[str, BeforeValidator(_store_prefix)]


def _replicas(value):
    """`auto`, or a whole number of processes (at least 1)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError("expected auto or a whole number of processes, at least 1")


Replicas = Annotated[int | Literal["auto"], BeforeValidator(_replicas)]


def _comma_list(value):
    """`integrity,temporal` (a flag or --set) -> ["integrity", "temporal"]; lists pass through."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class WorldSettings(Section):
    """The procedural motion world (built on first use) or a HumanML3D directory."""

    clips: int = Field(4000, ge=100, description="clips in the procedural corpus built on first use")
    seed: int = Field(0, description="the world's own seed")
    dataset: str = Field("", description="a HumanML3D directory to use instead of the world")


class ModelSettings(Section):
    """The generator's base model and where generator, trainer and evaluator compute."""

    base: StorePrefix = Field("", description="store prefix of a model bundle; empty = the tiny base, pretrained on first use")
    checkpoint: str = Field("", description="a released MotionGPT checkpoint (motiongpt_s3_h3d.tar), imported once")
    t5_dir: str = Field("", description="flan-t5-base folder; empty = deps/flan-t5-base next to the checkpoint")
    mean_std: str = Field(
        "", description="MotionGPT's meta/{mean,std}.npy folder (not HumanML3D's Mean/Std); empty = found in its deps/ layout"
    )
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda|cuda:\d+)$", description="generator, trainer, evaluator: auto | cpu | cuda | cuda:N"
    )
    dtype: Dtype = Field("fp32", description="the language model's format on generator and trainer")
    pretrain_minutes: float = Field(20.0, gt=0, description="a cap: the planned steps take about 6-7 min on 2 cores")
    pretrain_preset: Literal["default", "tiny"] = Field("default", description="tiny: seconds, for tests and smoke runs")


class PromptSettings(Section):
    """Event-level prompt composition (the judge service's ComposePrompts)."""

    tasks: Annotated[list[Task], BeforeValidator(_comma_list)] = Field(
        default_factory=lambda: list(TASKS), min_length=1, description="sub-tasks"
    )
    per_task: int = Field(150, ge=1, description="training prompts per sub-task")
    eval_per_task: int = Field(100, ge=1, description="held-out prompts per sub-task (>= 32 for R-precision)")
    backend: Literal["offline", "llm"] = Field("offline", description="offline templates, or an OpenAI-compatible LLM")


class GenerateSettings(Section):
    """The generator's sampling (SamplingParams)."""

    samples_per_prompt: int = Field(8, ge=2, description="motions per training prompt (paper: 6-10)")
    eval_samples_per_prompt: int = Field(8, ge=1, description="motions per held-out prompt")
    temperature: float = Field(1.0, gt=0, description="softmax temperature")
    top_k: int | None = Field(None, ge=0, description="null = the decoding's (off for constrained, 50 for motiongpt); 0 = off")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus mass; 1 = off")
    max_length: int | None = Field(
        None, ge=1, le=1024, description="null = the decoding's: 49 codes (constrained), 127 new tokens (motiongpt)"
    )
    decoding: Decoding = Field("", description="empty = the model's own: motiongpt for an imported checkpoint, else constrained")
    batch_prompts: int = Field(8, ge=1, description="prompts per Generate request (the unit of fan-out and retry)")
    concurrency: int = Field(2, ge=1, description="requests in flight per generator replica")
    replicas: Replicas = Field(
        "auto", description="generator processes an embedded run starts; auto = 2 on CPUs (each on half the threads), 1 on a GPU"
    )


class RenderSettings(Section):
    """The renderer's options (RenderOptions)."""

    form: Form = Field("full_image", description="how frames are shown to a VLM judge")
    interval: int = Field(8, ge=1, le=64, description="render every k-th frame (paper: 8)")
    size: int = Field(256, ge=32, le=2048, description="pixels per frame, square")
    style: Literal["skeleton", "mesh"] = Field("skeleton", description="mesh needs SMPL model files (ATOM_SMPL_MODEL)")
    people_samples: int = Field(12, ge=0, description="with the kinematic judge only this many motions are rendered")


class JudgeSettings(Section):
    """The judge service (JudgeConfig)."""

    backend: Judge = Field("kinematic", description="kinematic (offline) or vlm (OpenAI-compatible)")
    model: str = Field("gpt-4o", min_length=1, description="the VLM's model name")
    budget_usd: float = Field(5.0, ge=0, description="hard cap on new judge spend in USD")
    batch: int = Field(16, ge=1, description="motions per Score request")
    votes: int = Field(1, ge=1, le=15, description="VLM: ask each question this many times, keep the majority")
    vote_temperature: float = Field(0.7, gt=0, le=2, description="VLM votes' sampling temperature")
    min_agreement: float = Field(
        0.0, ge=0, le=1, description="VLM votes: drop pairs whose chosen or rejected score has less agreement than this"
    )
    response_format: ResponseFormat = Field(
        "json_schema", description="VLM structured output: json_schema (OpenAI), guided_json / structured_outputs (vLLM), json_object, none"
    )
    batch_api: bool = Field(False, description="VLM: through the Batch API at half price (resumes after a kill)")
    confirm_above_usd: float | None = Field(
        5.0,
        ge=0,
        description="VLM: ask before the judge stage spends more than this (estimated, USD); with no "
        "terminal, stop instead; null = never ask (--yes)",
    )


class PairSettings(Section):
    """The trainer's BuildPairs (Algorithm 1)."""

    theta: float = Field(0.0, ge=0, description="pair when score_i - score_j > theta")
    score_filter: bool = Field(True, description="keep a pair only when the chosen motion passes the task")
    min_chosen_score: float | None = Field(None, ge=0, description="null = per task: > 3 on the 0-5 scales, > 2 on frequency's 1-3")
    mixed_size: int = Field(0, ge=0, description="pairs in the mixed training set; 0 = every pair")


class TrainSettings(Section):
    """The trainer's preference training (TrainingConfig).

    The defaults are the embedded run's: KTO with beta 1.0 on summed log-probs moved all three
    sub-tasks of the tiny model, IPO only temporal order (docs/experiments.md). The paper's recipe
    (as its official release ran it) is algorithm ipo, beta 0.1, logprobs mean."""

    algorithm: Algorithm = Field("kto", description="preference loss (the paper's: ipo)")
    logprobs: Logprob = Field("sum", description="sequence log-prob: sum over tokens, or the per-token mean (TRL's IPO convention)")
    beta: float = Field(1.0, gt=0, description="the loss's beta (paper, IPO: 0.1)")
    rpo_alpha: float = Field(0.0, ge=0, description="weight of the chosen motions' NLL added to the loss (RPO)")
    learning_rate: float = Field(1e-3, gt=0, description="peak learning rate, cosine schedule")
    batch_size: int = Field(32, ge=1, description="pairs per step")
    epochs: int = Field(8, ge=1, description="passes over the pairs (paper: 20 over 80K pairs)")
    max_steps: int = Field(0, ge=0, description="stop after this many steps; 0 = no limit")
    lora_r: int = Field(8, ge=1, description="LoRA rank")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout")
    target_modules: Annotated[list[str], BeforeValidator(_comma_list)] = Field(
        default_factory=lambda: ["q", "v"], min_length=1, description="T5 projections that get LoRA"
    )


class SiteSettings(Section):
    """The run browser written at the end of the evaluation (atom.report); no stage depends on it."""

    build: bool = Field(True, description="write reports/<run>/site/ after the evaluation")
    cards_per_task: int = Field(8, ge=0, description="held-out prompts per task shown with videos")
    pair_videos: int = Field(6, ge=0, description="training pairs shown with videos")
    video_size: int = Field(160, ge=32, le=1024, multiple_of=2, description="video width and height, pixels")


class EvalSettings(Section):
    """The evaluator (EvaluateRequest)."""

    replications: int = Field(20, ge=1, description="replications for the CIs (paper: 20)")
    general_texts: int = Field(0, ge=0, description="test captions used; 0 = the whole test split")
    general_samples: int = Field(5, ge=1, description="generations per test caption; each replication picks one")
    mm_texts: int = Field(100, ge=0, description="MultiModality prompts")
    mm_samples: int = Field(30, ge=0, description="generations per MultiModality prompt")
    evaluator: str = Field(
        "embedded", pattern=r"^(embedded|guo:.+)$", description="embedded, or guo:<dir> (Guo et al.'s finest.tar, glove/, meta/; or deps/)"
    )
    protocol: Protocol = Field("", description="empty = motiongpt with the Guo evaluator, else guo")
