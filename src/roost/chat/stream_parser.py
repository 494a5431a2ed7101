"""Turn a stream of generated text into text deltas or tool-call deltas as it arrives."""

from __future__ import annotations

import dataclasses
import json

from roost.chat.prompt import TOOL_CALL_OPEN, TOOL_CALL_TRAILER
from roost.chat.tool_grammar import new_call_id
from roost.llm.messages import TextDelta, ToolCallDelta, ToolCallPart

Delta = TextDelta | ToolCallDelta

_NAME_PREFIX = TOOL_CALL_OPEN + '{"name": '
_ARGS_MARKER = ', "arguments": '


class ReplyStreamParser:
    """Incremental twin of :func:`roost.chat.tool_grammar.parse_reply` for one choice.

    A call streams as one delta with its id and name, then deltas of argument text.

    Text that may still turn out to open a tool call is held back until it is clear;
    argument text is released as it comes, minus the few characters that may be the
    call's fixed trailer.
    """

    def __init__(self, index: int, *, tools_offered: bool) -> None:
        self.index = index
        self.tools_offered = tools_offered
        self.mode: str = "undecided" if tools_offered else "text"
        self.buffer = ""
        self.calls: list[ToolCallPart] = []
        self.text = ""
        self._released_args = 0  # characters of the current call's arguments already sent
        self._decoder = json.JSONDecoder()

    def feed(self, delta: str) -> list[Delta]:
        if self.mode == "text":
            self.text += delta
            return [TextDelta(delta, choice=self.index)] if delta else []
        self.buffer += delta
        return self._advance()

    def finish(self) -> list[Delta]:
        """Flush what is held back once generation has ended."""
        if self.mode == "undecided" or (self.mode == "header" and not self.calls):
            self.mode = "text"
            rest, self.buffer = self.buffer, ""
            return self.feed(rest)
        events: list[Delta] = []
        if self.mode == "args" and self.buffer:
            # Ended inside a call (length limit): release the arguments generated, without
            # a trailer that was only begun.
            arguments = self.buffer
            try:
                _, end = self._decoder.raw_decode(self.buffer)
                if TOOL_CALL_TRAILER.startswith(self.buffer[end:]):
                    arguments = self.buffer[:end]
            except json.JSONDecodeError:
                pass
            self._set_arguments(arguments)
            pending = arguments[self._released_args :]
            if pending:
                events.append(self._arguments_delta(pending))
        self.buffer = ""
        return events

    def _advance(self) -> list[Delta]:
        events: list[Delta] = []
        while True:
            if self.mode == "undecided":
                if TOOL_CALL_OPEN.startswith(self.buffer):
                    return events  # could still become a call
                if self.buffer.startswith(TOOL_CALL_OPEN):
                    self.mode = "header"
                    continue
                self.mode = "text"
                rest, self.buffer = self.buffer, ""
                return events + self.feed(rest)
            if self.mode == "header":
                started = self._parse_header()
                if started is None:
                    return events
                events.append(started)
                continue
            if self.mode == "args":
                finished, delta = self._parse_args()
                if delta:
                    events.append(self._arguments_delta(delta))
                if not finished:
                    return events
                continue
            if self.mode == "between":
                stripped = self.buffer.lstrip()
                if not stripped or TOOL_CALL_OPEN.startswith(stripped):
                    return events
                if stripped.startswith(TOOL_CALL_OPEN):
                    self.buffer = stripped
                    self.mode = "header"
                    continue
                self.text += self.buffer
                self.buffer = ""
                return events

    def _arguments_delta(self, text: str) -> ToolCallDelta:
        return ToolCallDelta(len(self.calls) - 1, arguments=text, choice=self.index)

    def _set_arguments(self, arguments: str) -> None:
        self.calls[-1] = dataclasses.replace(self.calls[-1], arguments=arguments)

    def _parse_header(self) -> ToolCallDelta | None:
        if not self.buffer.startswith(_NAME_PREFIX):
            return None
        try:
            name, after = self._decoder.raw_decode(self.buffer, len(_NAME_PREFIX))
        except json.JSONDecodeError:
            return None
        if not self.buffer.startswith(_ARGS_MARKER, after):
            return None
        call = ToolCallPart(new_call_id(), str(name), "")
        self.calls.append(call)
        self.buffer = self.buffer[after + len(_ARGS_MARKER) :]
        self._released_args = 0
        self.mode = "args"
        return ToolCallDelta(len(self.calls) - 1, call.id, call.name, choice=self.index)

    def _parse_args(self) -> tuple[bool, str]:
        """(call complete?, argument text safe to release now)."""
        if TOOL_CALL_TRAILER in self.buffer:
            try:
                _, end = self._decoder.raw_decode(self.buffer)
            except json.JSONDecodeError:
                end = -1
            if end >= 0 and self.buffer.startswith(TOOL_CALL_TRAILER, end):
                arguments = self.buffer[:end]
                delta = arguments[self._released_args :]
                self._set_arguments(arguments)
                self.buffer = self.buffer[end + len(TOOL_CALL_TRAILER) :]
                self.mode = "between"
                return True, delta
        safe = max(self._released_args, len(self.buffer) - len(TOOL_CALL_TRAILER))
        delta = self.buffer[self._released_args : safe]
        self._released_args = safe
        return False, delta
