"""The judge service: AToM stage 1 (prompts) and stage 2 (scores).

Domain modules (no gRPC here; the servicer wires them):
  records      PromptRecord, JudgeItem, Judgement (+ JSONL helpers)
  compose      offline event-level prompt composer; meta labels from captions
  llm_compose  the same with an LLM through any OpenAI-compatible endpoint
  rules        the scoring rules as pure functions
  kinematic    offline judge: event detector + rules ('kinematic-v1'); ground-truth agreement
  vlm          VLM judge through the openai client (cache, budget, retries, rate limits)
  instructions task instructions (INSTRUCTION_VERSION) and chat messages
  parse        strict score reading
  budget       cost model, hard budget cap, token buckets
  cache        judgements/<key>.json in the artifact store
  client       API key handling (never logged) and counted retries
  agree        agreement between judges (exact, Spearman, kappa, confusion)
  estimate     questions, images, tokens and cost of a run before spending (sync and Batch API)
  batch        the VLM judge through OpenAI's Batch API, resumable, at the batch price
  votes        self-consistency: majority of N votes, agreement, entropy, pair filtering
  calibrate    agreement with known scores per task and (form, interval); world clips, human labels
  human        the human-label JSONL format and its loader
"""
