"""Continuation: how likely, and how greedy, one given continuation of a prompt is.

lm-evaluation-harness's ``output_type: loglikelihood`` (LAMBADA: the last word of a passage
after the rest of it). Each row gives a prompt (``prompt.template`` over ``fields.input``) and
one target continuation (``prompt.target_template`` over ``fields.target``, the text appended
*after* the prompt, delimiter included). The model is asked for log P(target | prompt) and
whether greedy decoding would produce the target token by token (request kind
``loglikelihood`` with one continuation: ``Response.logprobs[0]`` and ``greedy_match[0]``).
The ``continuation`` metric turns these into lm-eval's ``perplexity`` (exp of minus the mean
log-likelihood) and ``acc`` (the share of greedy targets). Nothing is generated.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmbench.tasks.yaml_task import YamlTask
from llmbench.types import Request, RequestKind, Response, Sample


class ContinuationTask(YamlTask):
    """A YAML task of kind ``continuation`` (see the module docstring)."""

    def build_requests(
        self, samples: Sequence[Sample], mode: RequestKind, *, chat: bool = False
    ) -> list[Request]:
        """One ``loglikelihood`` request per sample whose one continuation is the rendered
        target (stripped in a chat, as the multiple-choice continuations are)."""
        out = []
        for s in samples:
            target = self._render_target(s, s.references[0])
            out.append(Request(sample_id=s.id, kind=mode, prompt=self.prompt_for(s, chat=chat),
                               continuations=(target.strip() if chat else target,), input=s.input,
                               context=s.context, config=self.generation))
        return out

    def predict(self, sample: Sample, response: Response, mode: RequestKind) -> str:
        """No text is predicted; the metric reads the log-likelihood and greedy flag."""
        return ""
