"""Reading and checking a compute-forecast answer, and the score it gets. Standard library only."""
import json
import math

import lm

FIELDS = ("d_model", "n_layers", "tokens", "predicted_loss")


class BadAnswer(Exception):
    pass


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def parse_answer(text, budget=lm.BUDGET_FLOPS):
    """The answer as a dict; raises BadAnswer with a sentence that says what to change."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise BadAnswer("answer.json is not valid JSON (%s)." % e)
    if not isinstance(raw, dict):
        raise BadAnswer("answer.json must hold one JSON object with the fields %s." % ", ".join(FIELDS))
    missing = [f for f in FIELDS if f not in raw]
    unknown = sorted(k for k in raw if k not in FIELDS)
    if missing:
        raise BadAnswer("answer.json lacks %s; it needs %s." % (", ".join(missing), ", ".join(FIELDS)))
    if unknown:
        raise BadAnswer("answer.json has unknown fields %s; it takes only %s." % (", ".join(unknown), ", ".join(FIELDS)))
    d, layers, tokens, predicted = (raw[f] for f in FIELDS)
    lo, hi = lm.D_MODEL_RANGE
    if not _whole(d) or not lo <= d <= hi or d % lm.HEAD_DIM:
        raise BadAnswer("d_model must be a whole number from %d to %d and a multiple of %d; it is %r."
                        % (lo, hi, lm.HEAD_DIM, d))
    lo, hi = lm.N_LAYERS_RANGE
    if not _whole(layers) or not lo <= layers <= hi:
        raise BadAnswer("n_layers must be a whole number from %d to %d; it is %r." % (lo, hi, layers))
    if not _whole(tokens) or tokens < lm.MIN_STEPS * lm.BATCH_TOKENS:
        raise BadAnswer("tokens must be a whole number of at least %d (%d steps of %d tokens); it is %r."
                        % (lm.MIN_STEPS * lm.BATCH_TOKENS, lm.MIN_STEPS, lm.BATCH_TOKENS, tokens))
    spent = lm.flops(d, layers, lm.steps_for(tokens) * lm.BATCH_TOKENS)
    if spent > budget:
        raise BadAnswer("d_model %d, n_layers %d and %d tokens need %.3g FLOPs (6 x %d weights x %d tokens), over "
                        "the budget of %.3g. At this size at most %d tokens fit."
                        % (d, layers, tokens, spent, lm.weights(d, layers), lm.steps_for(tokens) * lm.BATCH_TOKENS,
                           budget, lm.max_tokens(d, layers, budget)))
    if isinstance(predicted, bool) or not isinstance(predicted, (int, float)) or not math.isfinite(predicted) \
            or not 0 < predicted < 10:
        raise BadAnswer("predicted_loss must be a number between 0 and 10 (nats per token); it is %r." % (predicted,))
    return {"d_model": d, "n_layers": layers, "tokens": tokens, "predicted_loss": float(predicted)}


def score(achieved, predicted):
    """Lower is better: the loss reached, plus how far the forecast of it was off."""
    return achieved + abs(predicted - achieved)
