"""Jinja2 templates: the system prompts and the prompt formats.

All templates render in a sandboxed environment with strict undefined variables;
persona text only ever enters as a value, so a card holding `{{ ... }}` is printed,
not executed. `--templates DIR` puts a folder in front of the shipped templates:
a file there with the same name overrides the shipped one.

A prompt format turns (system, messages) into the text the model continues. It is
either the tokenizer's own chat template or one of `templates/formats/*.jinja` for
base models without one. A format file declares its stop strings with
`{% set stop = [...] %}`; they may use the speaker names.

A prompt (`PromptStyle`, the eval's prompt axis) is the character's whole side of the
conversation as one deployment writes it: a system-prompt template, whether the card's
greeting opens the dialogue, and the format. `rolegen` is this project's own
(`character_system.jinja`, the greeting, the run's format); every other one is a file
`templates/prompts/<name>.jinja` (a `--templates` folder may add its own), which renders
the system prompt from the same values and declares the rest with constant
`{% set greeting = false %}` / `{% set format = "alpaca-roleplay" %}` (defaults: the
greeting kept, the run's format).

Non-goals: token-level prompt assembly (the engines tokenize the rendered text).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from rolegen.config.systems import ROLEGEN_PROMPT
from rolegen.errors import RolegenError
from rolegen.resources import templates_dir

CHARACTER_SYSTEM = "character_system.jinja"
USER_SIMULATOR = "user_simulator.jinja"


def template_folders(folder: str | Path | None) -> dict[str, list[Path]]:
    """A `--templates` folder with its templates (every `*.jinja` file under it, sorted),
    as `runs.input_hashes` takes it; empty without one."""
    if not folder or not Path(folder).expanduser().is_dir():
        return {}
    files = sorted(p for p in Path(folder).expanduser().rglob("*.jinja") if p.is_file())
    return {str(folder): files}


def _template_line(exc: BaseException, name: str) -> int | None:
    """The template line a render error happened on (jinja rewrites tracebacks so
    that template frames carry the template's file name and line)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(name):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class Templates:
    """The template set of a run: shipped templates, optionally overridden by a folder."""

    def __init__(self, override_dir: str | Path | None = None):
        folders = []
        if override_dir is not None:
            override_dir = Path(override_dir).expanduser()
            if not override_dir.is_dir():
                raise RolegenError(f"{override_dir}: --templates folder not found")
            folders.append(str(override_dir))
        folders.append(str(templates_dir()))
        self.folders = folders
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(folders),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
        )
        self.used: dict[str, str] = {}  # template name -> sha256 of its source

    def _get(self, name: str) -> jinja2.Template:
        try:
            template = self.env.get_template(name)
        except jinja2.TemplateNotFound:
            raise RolegenError(
                f"template '{name}' not found in {', '.join(self.folders)}"
            ) from None
        except jinja2.TemplateSyntaxError as e:
            raise RolegenError(
                f"template '{e.filename or name}' line {e.lineno}: {e.message}"
            ) from None
        if name not in self.used:
            source = Path(template.filename).read_bytes()
            self.used[name] = hashlib.sha256(source).hexdigest()
        return template

    def render(self, name: str, **values) -> str:
        template = self._get(name)
        try:
            return template.render(**values)
        except jinja2.TemplateError as e:
            line = _template_line(e, name)
            where = f" line {line}" if line else ""
            raise RolegenError(f"template '{template.filename}'{where}: {e}") from None

    def module_value(self, name: str, attribute: str, **values):
        """A `{% set attribute = ... %}` value of a template, rendered with `values`."""
        template = self._get(name)
        try:
            return getattr(template.make_module(values), attribute, None)
        except jinja2.TemplateError as e:
            raise RolegenError(f"template '{template.filename}': {e}") from None

    def formats(self) -> list[str]:
        names = set()
        for folder in self.folders:
            names.update(p.stem for p in (Path(folder) / "formats").glob("*.jinja"))
        return sorted(names)

    def prompts(self) -> list[str]:
        """The prompt names: rolegen's own and every `prompts/*.jinja`."""
        names = {ROLEGEN_PROMPT}
        for folder in self.folders:
            names.update(p.stem for p in (Path(folder) / "prompts").glob("*.jinja"))
        return sorted(names)

    def prompt_style(self, name: str) -> PromptStyle:
        """A prompt by name; its declarations are read without rendering it (they must be
        constants)."""
        if name == ROLEGEN_PROMPT:
            return ROLEGEN_STYLE
        if name not in self.prompts():
            raise RolegenError(
                f"unknown prompt '{name}' (--prompts); known prompts: {', '.join(self.prompts())}"
            )
        file = f"prompts/{name}.jinja"
        template = self._get(file)
        declared = {}
        for node in self.env.parse(Path(template.filename).read_text(encoding="utf-8")).body:
            if isinstance(node, nodes.Assign) and isinstance(node.target, nodes.Name):
                try:
                    declared[node.target.name] = node.node.as_const()
                except nodes.Impossible:
                    raise RolegenError(
                        f"template '{template.filename}' line {node.lineno}: "
                        f"'{node.target.name}' must be a constant"
                    ) from None
        greeting, fmt = declared.get("greeting", True), declared.get("format")
        if not isinstance(greeting, bool):
            raise RolegenError(f"template '{template.filename}': greeting must be true or false")
        if fmt is not None and fmt != "chat_template" and fmt not in self.formats():
            raise RolegenError(
                f"template '{template.filename}': unknown format '{fmt}'; available: "
                f"chat_template, {', '.join(self.formats())}"
            )
        return PromptStyle(name, file, greeting=greeting, format=fmt)

    def resolve_format(self, name: str | None, tokenizer, model_path) -> PromptFormat:
        """A named format template, or (None / "chat_template") the tokenizer's own chat
        template, which must exist."""
        if name and name != "chat_template":
            return self.prompt_format(name)
        if not getattr(tokenizer, "chat_template", None):
            raise RolegenError(
                f"{model_path}: the tokenizer has no chat template; pass --format "
                f"({', '.join(self.formats())})"
            )
        return ChatTemplateFormat(tokenizer)

    def prompt_format(self, name: str) -> PromptFormat:
        if name not in self.formats():
            raise RolegenError(f"unknown --format '{name}'; available: {', '.join(self.formats())}")
        return TemplateFormat(self, name)


@dataclass(frozen=True)
class PromptStyle:
    """A prompt of the eval's prompt axis (see the module docstring)."""

    name: str
    system: str  # the system-prompt template
    greeting: bool = True  # the card's greeting opens the dialogue as the character's turn
    format: str | None = None  # a format name, "chat_template", or None: the run's format


ROLEGEN_STYLE = PromptStyle(ROLEGEN_PROMPT, CHARACTER_SYSTEM)


@dataclass
class PromptFormat:
    """Renders a conversation for the model; `stop` strings end the model's turn."""

    name: str
    stop_words: list[str] = field(default_factory=list)

    def render(
        self,
        system: str,
        messages: list[dict],
        char: str,
        user: str,
        add_generation_prompt: bool = True,
    ) -> str:
        """The prompt text; `add_generation_prompt=False` renders a finished conversation
        (training uses it to find where each reply ends)."""
        raise NotImplementedError

    def stop(self, char: str, user: str) -> list[str]:
        return list(self.stop_words)


def fold_notes(system: str, messages: list[dict]) -> tuple[str, list[dict]]:
    """`system` and `messages` with every system message inside the chat (a depth prompt)
    folded into a neighbour, for a layout with no turn of its own for one: it joins the
    user turn right after it, else the user turn right before it, else the system prompt.
    The user's words and the note stay on lines of their own."""
    if not any(m["role"] == "system" for m in messages):
        return system, messages
    out: list[dict] = []
    pending: list[str] = []  # notes waiting for the next user turn
    for i, m in enumerate(messages):
        if m["role"] != "system":
            if m["role"] == "user" and pending:
                m = {**m, "content": "\n".join([*pending, m["content"]])}
                pending = []
            out.append(m)
            continue
        pending.append(m["content"])
        if i + 1 < len(messages) and messages[i + 1]["role"] in ("user", "system"):
            continue  # waits for the user turn after it
        if out and out[-1]["role"] == "user":
            out[-1] = {**out[-1], "content": "\n".join([out[-1]["content"], *pending])}
        else:
            system = "\n\n".join([system, *pending])
        pending = []
    return system, out


class TemplateFormat(PromptFormat):
    """A format from `templates/formats/<name>.jinja`. A format whose layout has no turn
    for a system message inside the chat sets `fold_notes = true`: depth prompts are then
    folded into a user turn (`fold_notes`)."""

    def __init__(self, templates: Templates, name: str):
        super().__init__(name=name)
        self._templates = templates
        self._file = f"formats/{name}.jinja"

    def render(
        self,
        system: str,
        messages: list[dict],
        char: str,
        user: str,
        add_generation_prompt: bool = True,
    ) -> str:
        if self._folds:
            system, messages = fold_notes(system, messages)
        return self._templates.render(
            self._file,
            system=system,
            messages=messages,
            char=char,
            user=user,
            add_generation_prompt=add_generation_prompt,
        )

    @functools.cached_property
    def _folds(self) -> bool:
        values = {"char": "", "user": "", "system": "", "messages": []}
        return bool(
            self._templates.module_value(
                self._file, "fold_notes", add_generation_prompt=True, **values
            )
        )

    def stop(self, char: str, user: str) -> list[str]:
        stop = self._templates.module_value(
            self._file,
            "stop",
            char=char,
            user=user,
            system="",
            messages=[],
            add_generation_prompt=True,
        )
        return [s for s in (stop or []) if s]


class ChatTemplateFormat(PromptFormat):
    """The tokenizer's own chat template (used when it has one and no --format is given)."""

    def __init__(self, tokenizer):
        super().__init__(name="chat_template")
        self._tokenizer = tokenizer

    def render(
        self,
        system: str,
        messages: list[dict],
        char: str,
        user: str,
        add_generation_prompt: bool = True,
    ) -> str:
        full = [{"role": "system", "content": system}, *messages]
        try:
            return self._tokenizer.apply_chat_template(
                full, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        except Exception:
            # A template that refuses a system message inside the chat (a depth prompt):
            # fold it into a user turn and try again.
            if any(m["role"] == "system" for m in messages):
                system, messages = fold_notes(system, messages)
                return self.render(system, messages, char, user, add_generation_prompt)
            # Some chat templates (LLaMA-2's) insist on user/assistant alternation from the
            # first turn; fold a leading assistant turn (the greeting) into the system prompt.
            if messages and messages[0]["role"] == "assistant":
                folded = (
                    f"{system}\n\n{char} opened the conversation with: {messages[0]['content']}"
                )
                full = [{"role": "system", "content": folded}, *messages[1:]]
                return self._tokenizer.apply_chat_template(
                    full, tokenize=False, add_generation_prompt=add_generation_prompt
                )
            raise
