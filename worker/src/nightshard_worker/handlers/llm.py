"""Language models over table rows: a prompt built from columns, then `classify` or `generate`.

`classify` scores a fixed label set by the labels' log-probabilities after the prompt, in one
forward pass and without sampling: the label with the highest probability is the answer, and every
label's probability (softmax over the labels) is written too. `generate` decodes greedily, so a
rerun gives the same answer, up to `max_new_tokens` or the first stop string.

Batches are cut by a token budget that counts what the KV cache holds (prompt plus new tokens),
over rows sorted by prompt length (`PreparedRows.lengths`). A prompt that does not fit the context
with its new tokens is quarantined with that reason, or with `over_context: truncate` its column
text is cut to fit and the row is marked `prompt_truncated`; never silently cut.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from nightshard_worker import model_files, placement, tuning
from nightshard_worker.contract import ModelSpec
from nightshard_worker.errors import BadInputError
from nightshard_worker.handlers.base import ModelHandler, PreparedRows, uniform_edges
from nightshard_worker.input_requirements import llm_columns
from nightshard_worker.llm_options import LlmOptions, LlmOptionsError, parse_llm_options
from nightshard_worker.prompt_template import TemplateError

log = logging.getLogger(__name__)

FINISH_LABEL = "label"  # classify: a label was scored, nothing generated
FINISH_EOS = "eos"  # generate: the model ended its answer
FINISH_STOP = "stop"  # generate: a stop string ended the answer (the stop string is not in it)
FINISH_LENGTH = "length"  # generate: max_new_tokens reached
WEIGHT_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
# Column values the template is rendered with to find the tokens every prompt starts with: empty,
# a letter with and without a space, a digit, a newline, punctuation. A value can merge with the
# text before it into one token; the common prefix over these stops before any such merge, and
# each batch is checked against it anyway.
PREFIX_PROBES = ("", "x", " x", "0", "\n", "-")


@functools.lru_cache(maxsize=2)
def load_model(source: str, dtype_name: str = "float32") -> tuple[Any, Any]:
    """(tokenizer, model) from a GGUF file or a Hugging Face model directory, offline, once per process.

    GGUF weights are de-quantised into PyTorch tensors by transformers (needs `gguf`).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if source.endswith(".gguf"):
        folder, name = os.path.split(source)
        kwargs: dict[str, Any] = {"gguf_file": name}
    else:
        folder, kwargs = source, {}
    if not os.path.exists(source):
        raise BadInputError(f"llm model {source} does not exist; set model.artifact to a .gguf file or a model directory")
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=getattr(torch, dtype_name),
                                                 **kwargs).eval()
    return tokenizer, model


def footprint_of(model: torch.nn.Module) -> placement.ModelFootprint:
    """Weights per decoder layer, the rest, and KV-cache bytes per token per layer, as loaded."""
    layers = model.get_decoder().layers
    dtype_bytes = next(model.parameters()).element_size()
    layer_bytes = sum(p.numel() for p in layers[0].parameters()) * dtype_bytes
    total = sum(p.numel() for p in model.parameters()) * dtype_bytes  # tied weights counted once
    config = model.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return placement.ModelFootprint(layers=len(layers), layer_bytes=layer_bytes,
                                    other_bytes=total - len(layers) * layer_bytes,
                                    kv_bytes_per_token=2 * kv_heads * head_dim * dtype_bytes)


def split_over_devices(model: torch.nn.Module, plan: placement.Placement,
                       devices: list[torch.device]) -> torch.nn.Module:
    """The model with its layers on the planned devices (accelerate hooks move activations between
    them); embeddings, final norm and the output head, tied or not, stay on the first device."""
    from accelerate import dispatch_model

    first = devices[0]
    decoder_name = model.base_model_prefix
    device_map = {f"{decoder_name}.{name}": str(first) for name, _ in model.get_decoder().named_children()
                  if name != "layers"}
    for index, device_index in enumerate(plan.device_of_layer()):
        device_map[f"{decoder_name}.layers.{index}"] = str(devices[device_index])
    for name, _ in model.named_children():
        if name != decoder_name:
            device_map[name] = str(first)
    return dispatch_model(model, device_map=device_map, main_device=str(first), force_hooks=True)


class LlmHandler(ModelHandler):
    """`model.options` as in `nightshard_worker.llm_options` -> answer, tokens, finish reason."""

    drift_edges = uniform_edges(0.0, 1.0, tuning.DRIFT_HISTOGRAM_BINS)
    # Sorting by prompt length packs alike prompts together: the more rows a step holds, the less
    # padding; prepared rows are token ids, a few kB each.
    step_batches = 8
    column_rule = staticmethod(llm_columns)

    def __init__(self, *, model_spec: ModelSpec, device: torch.device, precision: str):
        super().__init__(model_spec=model_spec, device=device, precision=precision)
        try:
            self.llm: LlmOptions = parse_llm_options(self.options)
        except LlmOptionsError as error:
            raise BadInputError(str(error)) from None
        source = model_spec.artifact or model_files.smollm2_gguf()
        # Weights in the precision asked for (autocast alone would keep fp32 weights: twice the memory).
        self.tokenizer, model = load_model(source, WEIGHT_DTYPES.get(precision, "float32"))
        self.placement: placement.Placement | None = None
        if device.type == "cuda" and torch.cuda.device_count() > 1:
            # gpus_per_pod > 1: split layer-wise when one GPU cannot hold weights + KV cache.
            gpus = [torch.device("cuda", index) for index in range(torch.cuda.device_count())]
            budget = int(min(torch.cuda.get_device_properties(gpu).total_memory for gpu in gpus)
                         * placement.DEVICE_MEMORY_BUDGET_FRACTION)
            kv_tokens = self.llm.kv_tokens
            try:
                self.placement = placement.place_layers(footprint_of(model), kv_tokens=kv_tokens,
                                                        devices=len(gpus), budget_bytes=budget)
            except placement.PlacementError as error:
                raise BadInputError(str(error)) from None
            log.info("llm placement: %s", self.placement.describe())
        if self.placement is not None and self.placement.devices_used > 1:
            self.model = split_over_devices(model, self.placement, gpus)
            self.device = gpus[0]
        else:
            self.model = model.to(device) if model.device != device else model
        config = self.model.config
        model_context = int(getattr(config, "max_position_embeddings", 0) or 2048)
        self.context_length = min(self.llm.context_length or model_context, model_context)
        self.pad_token_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None \
            else self.tokenizer.eos_token_id
        self.eos_token_id = self.tokenizer.eos_token_id
        # After an answer prefix ("This review is") a label is the next word: scored with its space.
        spaced = self.llm.answer_prefix and not self.llm.answer_prefix[-1].isspace()
        self.label_ids = [self.tokenizer((" " if spaced else "") + label, add_special_tokens=False)["input_ids"]
                          for label in self.llm.labels]
        self.longest_label = max((len(ids) for ids in self.label_ids), default=0)
        # Every prompt starts with the same tokens (system message, chat template, the template's
        # text before its first column): their keys and values are computed once and reused.
        self.shared_prefix = self._shared_prompt_prefix()
        self._prefix_cache: tuple[torch.nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] | None = None
        self.label_prior = self._content_free_log_probs() if self.llm.calibrate else None
        fields = [pa.field("answer", pa.string()), pa.field("input_tokens", pa.int32()),
                  pa.field("output_tokens", pa.int32()), pa.field("finish_reason", pa.string()),
                  pa.field("prompt_truncated", pa.bool_())]
        if self.llm.task == "classify":
            fields.append(pa.field("label_probabilities", pa.list_(pa.float32(), len(self.llm.labels))))
        self.output_fields = tuple(fields)

    # -- preprocess: rows -> prompt token ids -------------------------------------------------------

    def prompt_ids(self, user_text: str) -> list[int]:
        if not self.llm.chat_template:
            return self.tokenizer(user_text, add_special_tokens=True)["input_ids"]
        messages = ([{"role": "system", "content": self.llm.system}] if self.llm.system else [])
        messages.append({"role": "user", "content": user_text})
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        text += self.llm.answer_prefix
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _shared_prompt_prefix(self) -> tuple[int, ...]:
        """The token ids that every row's prompt starts with, whatever the row's values."""
        columns = self.llm.prompt.columns
        common = self.prompt_ids(self.llm.prompt.render({column: PREFIX_PROBES[0] for column in columns}))
        for probe in PREFIX_PROBES[1:]:
            ids = self.prompt_ids(self.llm.prompt.render({column: probe for column in columns}))
            same = 0
            while same < min(len(common), len(ids)) and common[same] == ids[same]:
                same += 1
            common = common[:same]
        return tuple(common)

    @property
    def tokens_after_prompt(self) -> int:
        """What the context must hold beyond the prompt: the new tokens, or the longest label."""
        return self.llm.new_tokens if self.llm.task == "generate" else self.longest_label

    def preprocess(self, table: pa.Table) -> PreparedRows:
        columns = {name: table.column(name).to_pylist() for name in self.llm.prompt.columns}
        room = self.context_length - self.tokens_after_prompt
        good_rows, prompts, truncated, bad_rows = [], [], [], {}
        for row in range(table.num_rows):
            try:
                text = self.llm.prompt.render({name: values[row] for name, values in columns.items()})
            except TemplateError as error:
                bad_rows[row] = str(error)
                continue
            ids = self.prompt_ids(text)
            cut = False
            if len(ids) > room:
                if self.llm.over_context == "truncate":
                    ids, cut = self._truncated(text, len(ids), room), True
                if len(ids) > room:
                    bad_rows[row] = (
                        f"prompt is {len(ids)} tokens; with {self.tokens_after_prompt} tokens after it that is over "
                        f"the context of {self.context_length} tokens (model.options.over_context: truncate cuts it)")
                    continue
            good_rows.append(row)
            prompts.append(ids)
            truncated.append(cut)
        lengths = np.array([len(ids) for ids in prompts], dtype=np.int64)
        input_ids = torch.full((len(prompts), int(lengths.max()) if len(prompts) else 0), self.pad_token_id,
                               dtype=torch.long)
        for index, ids in enumerate(prompts):
            input_ids[index, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        # The batch's cost in KV-cache tokens: classify runs one sequence per label (unless every
        # label is one token, then the prompt alone), generate holds prompt + max_new_tokens.
        sequences = 1 if self.llm.task == "generate" or self.longest_label == 1 else len(self.label_ids)
        return PreparedRows(
            tensors={"input_ids": input_ids, "prompt_lengths": torch.from_numpy(lengths),
                     "prompt_truncated": torch.tensor(truncated, dtype=torch.bool)},
            good_rows=np.array(good_rows, dtype=np.int64),
            bad_rows=bad_rows,
            lengths=(lengths + self.tokens_after_prompt) * sequences,
        )

    def _truncated(self, text: str, prompt_tokens: int, room: int) -> list[int]:
        """The prompt with the rendered text's tail cut so that the whole prompt fits `room`."""
        text_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        keep = len(text_ids) - (prompt_tokens - room)
        if keep <= 0:
            return self.prompt_ids(text)  # the template alone is over the context: quarantined
        return self.prompt_ids(self.tokenizer.decode(text_ids[:keep]))

    def collate(self, prepared: PreparedRows, row_indices: np.ndarray) -> dict[str, torch.Tensor]:
        batch = super().collate(prepared, row_indices)
        longest = int(batch["prompt_lengths"].max())
        batch["input_ids"] = batch["input_ids"][:, :longest].contiguous()
        return batch

    # -- predict -------------------------------------------------------------------------------------

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        lengths = batch["prompt_lengths"].cpu()
        if self.llm.task == "classify":
            outputs = self._classify(batch["input_ids"], lengths)
        else:
            outputs = self._generate(batch["input_ids"], lengths)
        outputs["input_tokens"] = lengths.numpy().astype(np.int32)
        outputs["prompt_truncated"] = batch["prompt_truncated"].cpu().numpy()
        return outputs

    def _classify(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, Any]:
        rows, labels = len(lengths), len(self.label_ids)
        scores = self._label_log_probs(input_ids, lengths).float()
        if self.label_prior is not None:
            scores = scores - self.label_prior.to(scores.device)
        probabilities = torch.softmax(scores, dim=-1).cpu()
        best = probabilities.argmax(dim=-1).numpy()
        answers = np.array([self.llm.labels[index] for index in best], dtype=object)
        return {"answer": answers, "label_probabilities": probabilities.numpy().reshape(rows, labels),
                "output_tokens": np.zeros(rows, dtype=np.int32),
                "finish_reason": np.array([FINISH_LABEL] * rows, dtype=object)}

    def _content_free_log_probs(self) -> torch.Tensor:
        """The labels' log-probabilities for the template with every column empty: the model's prior."""
        ids = self.prompt_ids(self.llm.prompt.render({column: "" for column in self.llm.prompt.columns}))
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        lengths = torch.tensor([len(ids)])
        with torch.inference_mode():
            prior = self._label_log_probs(input_ids, lengths)
        return torch.log_softmax(prior.float(), dim=-1)[0].cpu()

    def _label_log_probs(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        rows = len(lengths)
        if self.longest_label == 1:
            # Every label is one token: its log-prob is read at the prompt's last position.
            hidden, offset = self._hidden(input_ids, lengths)
            picked = hidden[torch.arange(rows, device=hidden.device), (lengths - 1 - offset).to(hidden.device)]
            label_tokens = torch.tensor([ids[0] for ids in self.label_ids], device=hidden.device)
            return self._log_softmax(picked)[:, label_tokens.to(self._head_device)]
        return self._multi_token_label_scores(input_ids, lengths)

    @property
    def _head_device(self) -> torch.device:
        return self.model.get_output_embeddings().weight.device

    def _multi_token_label_scores(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Sum of each label's token log-probs: one sequence per (row, label), all in one forward pass."""
        rows, labels = len(lengths), len(self.label_ids)
        total = int(lengths.max()) + self.longest_label
        sequences = torch.full((rows * labels, total), self.pad_token_id, dtype=torch.long)
        sequence_lengths = torch.zeros(rows * labels, dtype=torch.long)
        for row in range(rows):
            prompt = input_ids[row, :int(lengths[row])].cpu()
            for label, ids in enumerate(self.label_ids):
                index = row * labels + label
                sequence = torch.cat([prompt, torch.tensor(ids, dtype=torch.long)])
                sequences[index, :len(sequence)] = sequence
                sequence_lengths[index] = len(sequence)
        hidden, offset = self._hidden(sequences.to(input_ids.device), sequence_lengths)
        scores = torch.zeros(rows * labels, device=hidden.device)
        for label, ids in enumerate(self.label_ids):
            members = torch.arange(label, rows * labels, labels)
            starts = lengths.clone()  # the first label token sits at the prompt's length
            for token_index, token in enumerate(ids):
                positions = (starts + token_index - 1 - offset).to(hidden.device)
                picked = hidden[members.to(hidden.device), positions]
                scores[members.to(hidden.device)] += self._log_softmax(picked)[:, token]
        return scores.view(rows, labels)

    def _hidden(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Final hidden states of right-padded rows from position `offset` on (the shared prefix
        before it comes from the cache); the vocabulary projection is left for the few positions
        read, so logits never take rows x tokens x vocabulary memory.

        No attention mask: attention is causal and the padding comes after every position read, so
        it cannot change them, and without a mask SDPA keeps its causal fast path (a mask of ones
        took 6.2 s against 3.1 s for 16 x 64 tokens on the 2-core CPU).
        """
        decoder = self.model.get_decoder()
        offset = self._reusable_prefix(input_ids, lengths)
        if not offset:
            return decoder(input_ids=input_ids, use_cache=False).last_hidden_state, 0
        return decoder(input_ids=input_ids[:, offset:], past_key_values=self._prefix_for_rows(len(input_ids)),
                       use_cache=True).last_hidden_state, offset

    def _reusable_prefix(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> int:
        """How many leading tokens of this batch the prefix cache holds: the shared prefix when
        every row starts with it and goes on past it, else 0 (the batch runs from its first token)."""
        size = len(self.shared_prefix)
        if size == 0 or int(lengths.min()) <= size:
            return 0
        prefix = torch.tensor(self.shared_prefix, dtype=input_ids.dtype, device=input_ids.device)
        return size if bool((input_ids[:, :size] == prefix).all()) else 0

    def _prefix_for_rows(self, rows: int) -> Any:
        """A KV cache holding the shared prefix for `rows` rows, computed once per model (a model
        replaced after loading, as by a layer-wise split, gets its own)."""
        from transformers import DynamicCache

        if self._prefix_cache is None or self._prefix_cache[0] is not self.model:
            ids = torch.tensor([self.shared_prefix], dtype=torch.long, device=self.device)
            cache = self.model.get_decoder()(input_ids=ids, use_cache=True).past_key_values
            self._prefix_cache = (self.model, [(layer.keys, layer.values) for layer in cache.layers])
        # Expanded views, no copies: each layer's first update concatenates them with the batch's own.
        return DynamicCache(ddp_cache_data=[(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1))
                                            for keys, values in self._prefix_cache[1]], config=self.model.config)

    def _log_softmax(self, hidden: torch.Tensor) -> torch.Tensor:
        head = self.model.get_output_embeddings()
        return torch.log_softmax(head(hidden.to(head.weight.device)).float(), dim=-1)

    def _generate(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, Any]:
        rows, width = input_ids.shape
        # generate() continues every row from the same last position: pad on the left, after the
        # shared prefix when the cache holds it (positions follow the mask, so they stay the row's own).
        offset = self._reusable_prefix(input_ids, lengths)
        left = torch.full_like(input_ids, self.pad_token_id)
        mask = torch.zeros_like(input_ids)
        left[:, :offset] = input_ids[:, :offset]
        mask[:, :offset] = 1
        for row in range(rows):
            length = int(lengths[row])
            left[row, width - (length - offset):] = input_ids[row, offset:length]
            mask[row, width - (length - offset):] = 1
        cached = {"past_key_values": self._prefix_for_rows(rows)} if offset else {}
        generated = self.model.generate(
            input_ids=left, attention_mask=mask, max_new_tokens=self.llm.max_new_tokens, do_sample=False,
            num_beams=1, temperature=None, top_p=None, top_k=None, pad_token_id=self.pad_token_id,
            eos_token_id=self.eos_token_id, stop_strings=list(self.llm.stop) or None,
            tokenizer=self.tokenizer if self.llm.stop else None, **cached,
        )[:, width:].cpu()
        answers, output_tokens, reasons = [], [], []
        for row in range(rows):
            tokens = generated[row].tolist()
            ended = tokens.index(self.eos_token_id) if self.eos_token_id in tokens else None
            produced = tokens[:ended] if ended is not None else tokens
            text = self.tokenizer.decode(produced, skip_special_tokens=True)
            stops = [text.find(stop) for stop in self.llm.stop if stop in text]
            if stops:
                text, reason = text[:min(stops)], FINISH_STOP
            elif ended is not None:
                reason = FINISH_EOS
            else:
                reason = FINISH_LENGTH
            answers.append(text.strip())
            # The eos token was generated and paid for; padding after it was not.
            output_tokens.append(len(produced) + (1 if reason == FINISH_EOS else 0))
            reasons.append(reason)
        return {"answer": np.array(answers, dtype=object), "output_tokens": np.array(output_tokens, dtype=np.int32),
                "finish_reason": np.array(reasons, dtype=object)}

    def drift_values(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """classify: the first label's probability; generate: the share of max_new_tokens used."""
        if self.llm.task == "classify":
            return np.asarray(outputs["label_probabilities"], dtype=np.float32)[:, 0]
        return np.asarray(outputs["output_tokens"], dtype=np.float32) / self.llm.max_new_tokens
