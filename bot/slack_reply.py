"""Posting one answer in a thread: a visible 'working' signal at once, the streamed text, the final blocks.

Never silent: a stream that fails, or whose final edit fails, gives way to a plain post of the answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import Answer
from bot.links import StreamLinkGuard
from bot.payloads import Question
from bot.render import answer_blocks, fallback_text

log = logging.getLogger(__name__)
WORKING_STATUS = "is searching the wiki…"
WORKING_REACTION = "eyes"
GAVE_UP = "Sorry, something went wrong and I could not answer this. Please ask again in a few minutes."


class ThreadReply:
    """`link_hosts`: the wiki's hosts; links elsewhere in the answer are shown as text, streamed or final."""

    def __init__(self, client: AsyncWebClient, question: Question, stream: bool,
                 link_hosts: Collection[str] = ()) -> None:
        self.client = client
        self.question = question
        self.link_hosts = link_hosts
        self.ts: str | None = None  # the reply's message, once it is final
        self._streaming = stream  # until the stream stops or fails
        self._streamer: AsyncChatStream | None = None
        self._guard = StreamLinkGuard(link_hosts)
        self._working: asyncio.Task[None] | None = None

    def start_working(self) -> None:
        """Show the working signal, in parallel with what follows (retrieval, generation)."""
        self._working = asyncio.create_task(self._show_working())

    async def _show_working(self) -> None:
        """Assistant status in DMs, an :eyes: reaction on the question in channels; never fatal."""
        q = self.question
        try:
            if q.is_dm:
                await self.client.assistant_threads_setStatus(
                    channel_id=q.channel, thread_ts=q.thread_ts, status=WORKING_STATUS
                )
            else:
                await self.client.reactions_add(channel=q.channel, timestamp=q.ts, name=WORKING_REACTION)
        except Exception as exc:  # a courtesy: the answer comes without it
            log.info("could not show the working signal: %s", _reason(exc))

    async def append(self, text: str) -> None:
        """Stream a piece of the answer as it is generated (chat.startStream / appendStream). A stream that
        fails is given up: the whole answer is posted at the end."""
        if not self._streaming or not (text := self._guard.feed(text)):
            return
        try:
            if self._streamer is None:
                q = self.question
                self._streamer = await self.client.chat_stream(
                    channel=q.channel, thread_ts=q.thread_ts, recipient_team_id=q.team, recipient_user_id=q.user
                )
            await self._streamer.append(markdown_text=text)
        except SlackClientError as exc:
            self._give_up_stream(exc)

    def _give_up_stream(self, exc: SlackClientError) -> None:
        self._streaming = False
        log.warning("streaming the answer failed (%s): the whole answer goes in one message at the end", _reason(exc))

    async def finish(self, answer: Answer) -> str:
        """The final answer with its sources and feedback controls in the thread; return its ts."""
        blocks = answer_blocks(answer.text, answer.cited, answer.interaction_id, answer.note, answer.uncited,
                               self.link_hosts)
        return await self._put(fallback_text(answer.text, self.link_hosts), blocks)

    async def give_up(self) -> None:
        """Say in the thread that no answer is coming, in place of any streamed text; never raises."""
        if self.ts is not None:
            return  # the answer is out: what failed afterwards is only logged
        try:
            await self._put(GAVE_UP, answer_blocks(GAVE_UP, [], None))
        except Exception as exc:  # nothing more to try
            log.error("could not say in the thread that the answer failed: %s", _reason(exc))

    async def _put(self, text: str, blocks: list[dict[str, Any]]) -> str:
        """Replace the streamed text with the final message; where nothing was streamed or the replacement
        fails, post it (and delete the streamed text)."""
        q = self.question
        if self._working is not None:
            await self._working  # a status set after the reply would stay
        streamed = await self._stop_stream()
        if streamed is not None:
            try:
                await self.client.chat_update(channel=q.channel, ts=streamed, text=text, blocks=blocks)
                self.ts = streamed
                return streamed
            except SlackApiError as exc:
                log.warning("could not replace the streamed answer (%s): posting it anew", _reason(exc))
        response = await self.client.chat_postMessage(
            channel=q.channel, thread_ts=q.thread_ts, text=text, blocks=blocks, unfurl_links=False
        )
        self.ts = str(response["ts"])
        if streamed is not None:
            await self._delete(streamed)
        return self.ts

    async def _stop_stream(self) -> str | None:
        """Stop the stream if it still runs; the streamed message's ts, None when nothing was streamed."""
        if self._streamer is None:
            return None
        if self._streaming:
            self._streaming = False
            try:
                await self._streamer.stop(markdown_text=self._guard.flush() or None)
            except SlackClientError as exc:
                self._give_up_stream(exc)
        return self._streamer.ts

    async def _delete(self, ts: str) -> None:
        try:
            await self.client.chat_delete(channel=self.question.channel, ts=ts)
        except SlackApiError as exc:
            log.warning("could not delete the streamed text of an answer posted anew (%s)", _reason(exc))

    async def stop_working(self) -> None:
        """Clear the working signal, if it was shown; never raises."""
        if self._working is None:
            return
        await self._working
        if self.question.is_dm:
            return  # Slack clears the assistant status when the reply is posted
        try:
            await self.client.reactions_remove(channel=self.question.channel, timestamp=self.question.ts,
                                               name=WORKING_REACTION)
        except Exception as exc:  # already gone, never added, or Slack unreachable
            log.info("could not clear the working signal: %s", _reason(exc))


def _reason(exc: Exception) -> str:
    return str(exc.response.get("error")) if isinstance(exc, SlackApiError) else repr(exc)
