"""The "How to read this" text: what the heatmap shows, with the chosen model's formulas.

The text is Markdown with LaTeX (``$...$`` inline, ``$$...$$`` display) and is picked by the
card's attention kind, so a new model gets the right equations from its ``config.json``.
"""

from __future__ import annotations

import re

from demo_core.card import ModelCard

READING = """
**The picture.** Each row of the heatmap is one output token $y_t$, each column one source
token $x_i$ (SentencePiece pieces: `▁` starts a word, `</s>` ends the sentence). A cell is
the attention weight $\\alpha_{t,i}$: how much the decoder looked at $x_i$ while producing
$y_t$. Every row sums to 1, and the colour scale is fixed to $[0, 1]$, so pictures of
different sentences compare. A clean diagonal means word-by-word alignment; a block off the
diagonal is a reordering (German verbs at the end of a clause often show this); a row spread
thin means the model produced that token mostly from its own history.

**The confidence strip** shows $p(y_t \\mid y_{<t}, x)$ for each chosen token; hover a bar for
the other candidates at that step. Beam search and sampling can choose tokens that were not
the most likely one at their step.
"""

ENCODER = """
**Encoder.** A bidirectional GRU reads the source both ways:
$\\overrightarrow{h}_i = f(\\overrightarrow{h}_{i-1}, x_i)$ and
$\\overleftarrow{h}_i = f(\\overleftarrow{h}_{i+1}, x_i)$, and each source token is represented by
$h_i = [\\overrightarrow{h}_i; \\overleftarrow{h}_i]$.
"""

SCORES = {
    "additive": """
**Attention (additive, Bahdanau et al. 2015).** Before emitting $y_t$ the decoder scores every
source state with its previous state $s_{t-1}$ through a small feed-forward network:

$$e_{t,i} = v^\\top \\tanh(W s_{t-1} + U h_i)$$
""",
    "dot": """
**Attention (dot product, Luong et al. 2015).** The decoder first updates its state $s_t$, then
scores every source state by a plain dot product:

$$e_{t,i} = s_t^\\top h_i$$
""",
    "general": """
**Attention (general, Luong et al. 2015).** The decoder first updates its state $s_t$, then
scores every source state through a learned matrix $W$:

$$e_{t,i} = s_t^\\top W h_i$$
""",
}

WEIGHTS = """
The scores become the weights you see, and the weights mix the source states into a context vector:

$$\\alpha_{t,i} = \\operatorname{softmax}_i(e_{t,i}) = \\frac{\\exp e_{t,i}}{\\sum_j \\exp e_{t,j}}, \\qquad a_t = \\sum_i \\alpha_{t,i} h_i$$
"""

DECODER = {
    "additive": """
**Decoder.** The context feeds the next state and the prediction:
$s_t = g(s_{t-1}, y_{t-1}, a_t)$ and $p(y_t \\mid y_{<t}, x) = \\operatorname{softmax}(W_o [s_t; a_t; y_{t-1}])$.
""",
    "luong": """
**Decoder.** $s_t = g(s_{t-1}, y_{t-1}, \\tilde{h}_{t-1})$; after attending,
$\\tilde{h}_t = \\tanh(W_c [a_t; s_t])$ predicts $p(y_t \\mid y_{<t}, x) = \\operatorname{softmax}(W_o \\tilde{h}_t)$
and is fed to the next step.
""",
}

TRANSFORMER = """
**Attention (Transformer cross-attention, Vaswani et al. 2017).** In every decoder layer each
head $h$ projects the decoder states to queries $Q$ and the encoder output to keys $K$ and
values $V$, then

$$A^{(h)} = \\operatorname{softmax}\\!\\left(\\frac{Q K^\\top}{\\sqrt{d_k}}\\right), \\qquad \\text{out}^{(h)} = A^{(h)} V$$

Row $t$ of $A^{(h)}$ is the weight vector $\\alpha_{t,\\cdot}$ of that head. Pick a layer and a head
(their average, or "all heads" for a grid of every head of the layer on one colour scale) above
the heatmap; the figure's title names what is shown. Heads in one layer often specialise, and
the last layers tend to align best with the source.

**Encoder self-attention.** Before decoding, every encoder layer lets each source token attend
to every source token with the same formula, $Q$, $K$ and $V$ all coming from the source. Choose
"Encoder self-attention" to see it: rows are the attending tokens, columns the attended ones,
and each row sums to 1. (RNN models have no such view: their encoder is recurrent.)
"""


TASKS = {
    "translation": """
**What to look for in translation.** Where the two languages share word order the weights run
down the diagonal; a jump away from it is a reordering. One source piece lighting up for two
output words (German *im* = *in the*) or two pieces feeding one word is a many-to-one alignment.
""",
    "g2p": """
**What to look for in pronunciation.** Letters and sounds come in the same order, so the
attention is almost a staircase. A phone that looks at two letters (*ph* → F, *ng* → NG) shows
letters that make one sound; a letter that no phone looks at is silent (the *k* and *gh* of
*knight*).
""",
    "summarisation": """
**What to look for in summarisation.** The output is shorter than the input, so whole stretches
of source columns get little weight: these are the details the model left out. Rows that spread
over a phrase show a word written to stand for several.
""",
    "normalisation": """
**What to look for in date normalisation.** The output is always year-month-day, whatever the
input order, so each field's characters look at their own part of the input: the year digits
at the year, the month digits at the month name (*März*, *octubre*) or number. Day-first dates
make the attention jump back and forth; weekday names get no weight, because the ISO form does
not need them.
""",
}
CHINESE = """
**Chinese.** Chinese is written without spaces, so each Chinese character is its own token here
(Traditional characters are converted to Simplified first). Time and place phrases come before
the verb in Chinese and after it in English, so expect long jumps off the diagonal.
"""


SPEECH = """
**Speech synthesis.** Here the *source* is the phones and the *output* is sound: each decoder
step writes 4 frames of a mel spectrogram (80 frequency bands, 12.5 ms a frame), and the picture
puts the attention (phones on y, decoder steps on x) above the spectrogram those steps wrote, on
one time axis. A good alignment is a staircase from the first phone to the last: each phone is
read for as many steps as it lasts, vowels longer than stops, word gaps (␣) briefly. A skip or a
repeat in the staircase is a phone left out or said twice.

**Location-sensitive attention** (Chorowski et al., 2015; Tacotron 2) scores each phone from the
decoder state $s_t$, the phone's encoder state $h_i$ and where attention already was, so it can
only move forward smoothly:

$$f_t = F * \\sum_{k<t} \\alpha_k, \\qquad e_{t,i} = v^\\top \\tanh(W s_t + V h_i + U f_{t,i} + b)$$
"""
SPEECH_MATHS = SPEECH + WEIGHTS + """
The context $a_t$ and $s_t$ predict the next frames $y_t$ and the stop probability
$\\sigma(w^\\top [s_t; a_t])$; training adds a *guided-attention* loss (Tachibana et al., 2018) that
charges weight far from the diagonal, so the staircase forms within a few epochs.
"""


NOTICES = {  # task -> what the page says above the input: what the model was trained to read
    "summarisation": ("**Trained on image captions.** This model learned to shorten one English sentence that "
                      "describes a photo (its training data: {data}). Give it a description of a picture; other text (news, a story, "
                      "several sentences, a question) gets a caption-like answer that may have nothing to do with it."),
}


def task_notice(card: ModelCard | None) -> str | None:
    """Markdown saying what kind of text the model was trained on, for tasks where that is narrower
    than the task's name suggests (summarisation: image captions only); None for the others."""
    if card is None or card.task not in NOTICES:
        return None
    data = re.split(r"\s*[(:;]", card.data.name)[0] if card.data else "image captions"  # the name without its details
    return NOTICES[card.task].format(data=data)


def explanation(card: ModelCard | None) -> str:
    """Markdown for the model described by ``card``: how to read the figures, what this task's
    attention tends to look like, then the model's equations (just how to read them for None)."""
    if card is None:
        return READING + WEIGHTS
    task = TASKS.get(card.task, "")
    if "zh" in (card.source_lang, card.target_lang):
        task += CHINESE
    kind = str(card.model.get("attention", ""))
    if card.task == "tts":
        return READING + SPEECH_MATHS
    if card.architecture == "transformer":
        maths = TRANSFORMER
    elif kind in SCORES:
        maths = ENCODER + SCORES[kind] + WEIGHTS + DECODER["additive" if kind == "additive" else "luong"]
    else:
        maths = WEIGHTS
    return READING + task + maths
