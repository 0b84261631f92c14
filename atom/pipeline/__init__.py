"""The controller's pipeline: prompts -> generate -> render -> judge -> pairs -> train -> evaluate."""
