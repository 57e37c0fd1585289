"""Posting one answer in a thread: a visible 'working' signal at once, the streamed text, the final blocks."""

from __future__ import annotations

import logging
from collections.abc import Collection

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import Answer
from bot.links import StreamLinkGuard
from bot.payloads import Question
from bot.render import answer_blocks, fallback_text

log = logging.getLogger(__name__)
WORKING_STATUS = "is searching the wiki…"
WORKING_REACTION = "eyes"


class ThreadReply:
    """`link_hosts`: the wiki's hosts; links elsewhere in the answer are shown as text, streamed or final."""

    def __init__(self, client: AsyncWebClient, question: Question, stream: bool,
                 link_hosts: Collection[str] = ()) -> None:
        self.client = client
        self.question = question
        self.stream = stream
        self.link_hosts = link_hosts
        self._streamer: AsyncChatStream | None = None
        self._guard = StreamLinkGuard(link_hosts)

    async def show_working(self) -> None:
        """Assistant status in DMs, an :eyes: reaction on the question in channels; never fatal."""
        q = self.question
        try:
            if q.is_dm:
                await self.client.assistant_threads_setStatus(
                    channel_id=q.channel, thread_ts=q.thread_ts, status=WORKING_STATUS
                )
            else:
                await self.client.reactions_add(channel=q.channel, timestamp=q.ts, name=WORKING_REACTION)
        except SlackApiError as exc:
            log.info("could not show the working signal: %s", exc.response.get("error"))

    async def append(self, text: str) -> None:
        """Stream a piece of the answer as it is generated (chat.startStream / appendStream)."""
        if not self.stream or not (text := self._guard.feed(text)):
            return
        if self._streamer is None:
            q = self.question
            self._streamer = await self.client.chat_stream(
                channel=q.channel, thread_ts=q.thread_ts, recipient_team_id=q.team, recipient_user_id=q.user
            )
        await self._streamer.append(markdown_text=text)

    async def finish(self, answer: Answer) -> str:
        """Replace the streamed text with the final answer, sources and feedback controls; return its ts."""
        blocks = answer_blocks(answer.text, answer.cited, answer.interaction_id, answer.note, answer.uncited,
                               self.link_hosts)
        text = fallback_text(answer.text, self.link_hosts)
        q = self.question
        if self._streamer is not None:
            await self._streamer.stop(markdown_text=self._guard.flush() or None)
            ts = self._streamer.ts
            assert ts is not None  # set by the first flush, at the latest by stop()
            await self.client.chat_update(channel=q.channel, ts=ts, text=text, blocks=blocks)
        else:
            response = await self.client.chat_postMessage(
                channel=q.channel, thread_ts=q.thread_ts, text=text, blocks=blocks, unfurl_links=False
            )
            ts = str(response["ts"])
        return ts

    async def stop_working(self) -> None:
        if self.question.is_dm:
            return  # Slack clears the assistant status when the reply is posted
        try:
            await self.client.reactions_remove(channel=self.question.channel, timestamp=self.question.ts,
                                               name=WORKING_REACTION)
        except SlackApiError:
            pass  # already gone, or never added
