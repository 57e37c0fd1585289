"""The Slack app manifests subscribe to exactly the events the code listens to and ask for exactly the
scopes the Web API methods it calls need: nothing missing (the feature would silently not work), nothing
extra (workspace admins review every scope).

The code is read, not imported: every `app.event(...)`/`app.message(...)` registration and every
`client.<method>(...)` call (also `self.client`, `context.client`, `client.chat_stream`) under bot/ is found
with `ast`, then mapped to events and scopes with the tables below (Slack's documented requirements for bot
tokens). A method or event missing from the tables fails the test: add it with the scope Slack documents.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
SLACK = ROOT / "deploy" / "slack"
HTTP_MANIFEST = SLACK / "manifest.yaml"
SOCKET_MANIFEST = SLACK / "manifest.socket.yaml"
# https://github.com/slackapi/manifest-schema (MIT), schemas/manifest.schema.1.0.0.json
MANIFEST_SCHEMA = Path(__file__).with_name("slack_manifest.schema.json")

# Web API method -> bot scopes it needs (https://docs.slack.dev/reference/methods). An empty set: no scope.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "chat.meMessage": {"chat:write"},
    "chat.scheduleMessage": {"chat:write"},
    "chat.startStream": {"chat:write"},
    "chat.appendStream": {"chat:write"},
    "chat.stopStream": {"chat:write"},
    "chat.getPermalink": set(),
    "reactions.add": {"reactions:write"},
    "reactions.remove": {"reactions:write"},
    "reactions.get": {"reactions:read"},
    "assistant.threads.setStatus": {"assistant:write"},
    "assistant.threads.setSuggestedPrompts": {"assistant:write"},
    "assistant.threads.setTitle": {"assistant:write"},
    "views.open": set(),
    "views.publish": set(),
    "views.push": set(),
    "views.update": set(),
    # reading a thread: the history scope of each conversation type the bot is in
    "conversations.replies": {"channels:history", "groups:history", "im:history"},
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "conversations.info": {"channels:read", "groups:read", "im:read"},
    "conversations.members": {"channels:read", "groups:read", "im:read"},
    "conversations.open": {"im:write"},
    "users.info": {"users:read"},
    "users.profile.get": {"users.profile:read"},
    "bots.info": {"users:read"},
    "team.info": {"team:read"},
    "files.uploadV2": {"files:write"},
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
}

# SDK helpers that call several methods.
HELPER_METHODS: dict[str, set[str]] = {
    "chat_stream": {"chat.startStream", "chat.appendStream", "chat.stopStream"},
}

# Bolt listener utilities called by bare name inside listeners.
UTILITY_METHODS: dict[str, set[str]] = {
    "say": {"chat.postMessage"},
    "respond": set(),  # response_url: no token, no scope
    "set_status": {"assistant.threads.setStatus"},
    "set_suggested_prompts": {"assistant.threads.setSuggestedPrompts"},
    "set_title": {"assistant.threads.setTitle"},
}

# Event type in the code -> (manifest bot_events, bot scopes they need) (https://docs.slack.dev/reference/events).
# A `message` listener (any subtype: edits, deletions too) gets messages from DMs, public and private
# channels: each conversation type is its own subscription with its own history scope.
EVENT_SUBSCRIPTIONS: dict[str, tuple[set[str], set[str]]] = {
    "app_mention": ({"app_mention"}, {"app_mentions:read"}),
    "message": (
        {"message.channels", "message.groups", "message.im"},
        {"channels:history", "groups:history", "im:history"},
    ),
    "reaction_added": ({"reaction_added"}, {"reactions:read"}),
    "reaction_removed": ({"reaction_removed"}, {"reactions:read"}),
    "app_home_opened": ({"app_home_opened"}, set()),
    "assistant_thread_started": ({"assistant_thread_started"}, {"assistant:write"}),
    "assistant_thread_context_changed": ({"assistant_thread_context_changed"}, {"assistant:write"}),
    "member_joined_channel": ({"member_joined_channel"}, {"channels:read", "groups:read"}),
    "app_uninstalled": ({"app_uninstalled"}, set()),
    "tokens_revoked": ({"tokens_revoked"}, set()),
}
# Bolt's Assistant middleware (`app.assistant(Assistant())`) listens to these.
ASSISTANT_EVENTS = ({"assistant_thread_started", "assistant_thread_context_changed", "message.im"},
                    {"assistant:write", "im:history"})

INTERACTIVE_LISTENERS = {"action", "view", "view_submission", "view_closed", "block_action", "options",
                         "shortcut", "global_shortcut", "message_shortcut"}


@dataclass
class CodeUse:
    events: set[str] = field(default_factory=set)  # event types registered (`message`, `app_mention`, ...)
    methods: set[str] = field(default_factory=set)  # Web API methods called (`chat.postMessage`, ...)
    listeners: set[str] = field(default_factory=set)  # app.<listener> kinds used (event, action, view, ...)
    commands: set[str] = field(default_factory=set)  # slash commands registered
    assistant: bool = False  # app.assistant(...) / Assistant middleware
    unknown: list[str] = field(default_factory=list)  # what the tables cannot map


def _is_app(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "app") or (isinstance(node, ast.Attribute) and node.attr == "app")


def _is_client(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "client") or (
        isinstance(node, ast.Attribute) and node.attr == "client"
    )


def _event_type(call: ast.Call, where: str, use: CodeUse) -> str | None:
    arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "event"), None)
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.Dict):
        for key, value in zip(arg.keys, arg.values):
            if isinstance(key, ast.Constant) and key.value == "type" and isinstance(value, ast.Constant):
                return str(value.value)
    use.unknown.append(f"{where}: app.event(...) with an event type the test cannot read")
    return None


def scan_source(source: str, where: str, use: CodeUse) -> None:
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and _is_app(func.value):
            kind = func.attr
            if kind == "event":
                if (event := _event_type(node, where, use)) is not None:
                    use.events.add(event)
            elif kind == "message":
                use.events.add("message")
            elif kind == "assistant":
                use.assistant = True
            elif kind == "command":
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    use.commands.add(arg.value)
                else:
                    use.unknown.append(f"{where}: app.command(...) with a name the test cannot read")
            use.listeners.add(kind)
        elif isinstance(func, ast.Attribute) and _is_client(func.value):
            name = func.attr
            if name in HELPER_METHODS:
                use.methods |= HELPER_METHODS[name]
            elif name == "api_call":
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    use.methods.add(arg.value)
                else:
                    use.unknown.append(f"{where}: client.api_call(...) with a method the test cannot read")
            elif callable(getattr(AsyncWebClient, name, None)) and not name.startswith("_"):
                use.methods.add(name.replace("_", "."))  # chat_postMessage -> chat.postMessage
            # anything else named `client` (an HTTP client) is not Slack's
        elif isinstance(func, ast.Name):
            if func.id in UTILITY_METHODS:
                use.methods |= UTILITY_METHODS[func.id]
            elif func.id == "Assistant":
                use.assistant = True


def scan_code(root: Path = BOT) -> CodeUse:
    use = CodeUse()
    for path in sorted(root.rglob("*.py")):
        scan_source(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), use)
    return use


@dataclass(frozen=True)
class Needs:
    events: frozenset[str]
    scopes: frozenset[str]
    interactivity: bool
    commands: frozenset[str]


def needs_of(use: CodeUse) -> Needs:
    events: set[str] = set()
    scopes: set[str] = set()
    problems = list(use.unknown)
    for event in sorted(use.events):
        if event not in EVENT_SUBSCRIPTIONS:
            problems.append(f"event {event!r} is not in EVENT_SUBSCRIPTIONS: add its subscription and scopes")
            continue
        subscribed, needed = EVENT_SUBSCRIPTIONS[event]
        events |= subscribed
        scopes |= needed
    if use.assistant:
        events |= ASSISTANT_EVENTS[0]
        scopes |= ASSISTANT_EVENTS[1]
    for method in sorted(use.methods):
        if method not in METHOD_SCOPES:
            problems.append(f"Web API method {method} is not in METHOD_SCOPES: add the scopes Slack documents")
            continue
        scopes |= METHOD_SCOPES[method]
    if use.commands or use.listeners & {"shortcut", "global_shortcut", "message_shortcut"}:
        scopes.add("commands")
    assert not problems, "\n".join(problems)
    return Needs(
        events=frozenset(events),
        scopes=frozenset(scopes),
        interactivity=bool(use.listeners & INTERACTIVE_LISTENERS),
        commands=frozenset(use.commands),
    )


def load(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def needs() -> Needs:
    return needs_of(scan_code())


MANIFESTS = [pytest.param(HTTP_MANIFEST, id="http"), pytest.param(SOCKET_MANIFEST, id="socket")]


# --- the scanner itself ------------------------------------------------------------------------------


def test_scanner_reads_registrations_and_calls() -> None:
    source = '''
@app.event("app_mention")
async def a(client): await client.chat_postMessage(channel="C", text="x")
@app.event({"type": "message", "subtype": "message_changed"})
async def b(): pass
class R:
    async def c(self):
        s = await self.client.chat_stream(channel="C", thread_ts="1")
        await self.client.reactions_add(channel="C", timestamp="1", name="eyes")
        await context.client.api_call("users.info", params={"user": "U1"})
        await http.client.post("https://example.com")  # not Slack
        await client.get("https://example.com")  # not Slack either
@app.action("x")
async def d(ack, say): await ack(); await say("hi")
'''
    use = CodeUse()
    scan_source(source, "snippet", use)
    assert use.events == {"app_mention", "message"}
    assert use.methods == {
        "chat.postMessage", "chat.startStream", "chat.appendStream", "chat.stopStream", "reactions.add", "users.info"
    }
    needs = needs_of(use)
    assert needs.events == {"app_mention", "message.channels", "message.groups", "message.im"}
    assert needs.scopes == {
        "app_mentions:read", "channels:history", "groups:history", "im:history", "chat:write", "reactions:write",
        "users:read",
    }
    assert needs.interactivity


def test_scanner_refuses_what_it_cannot_map() -> None:
    use = CodeUse()
    scan_source('@app.event("pin_added")\nasync def f(): await client.pins_add(channel="C")\n', "snippet", use)
    with pytest.raises(AssertionError, match="pin_added(.|\n)*pins.add"):
        needs_of(use)


def test_the_code_uses_what_the_bot_is_known_to_use(needs: Needs) -> None:
    """A floor, so that a scanner that finds nothing cannot make the manifests pass."""
    assert {"app_mention", "message.im", "reaction_added"} <= needs.events
    assert {"chat:write", "reactions:write", "app_mentions:read"} <= needs.scopes


# --- the manifests against the code ------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS)
def test_manifest_is_valid(path: Path) -> None:
    schema = json.loads(MANIFEST_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(load(path), schema)


@pytest.mark.parametrize("path", MANIFESTS)
def test_manifest_events_are_exactly_those_listened_to(path: Path, needs: Needs) -> None:
    subscriptions = load(path)["settings"]["event_subscriptions"]
    events = subscriptions.get("bot_events") or []
    assert len(events) == len(set(events)), "an event is listed twice"
    assert not set(events) - needs.events, f"subscribed but never listened to: {sorted(set(events) - needs.events)}"
    assert not needs.events - set(events), f"listened to but not subscribed: {sorted(needs.events - set(events))}"
    assert not subscriptions.get("user_events"), "the bot acts with its bot token only"


@pytest.mark.parametrize("path", MANIFESTS)
def test_manifest_scopes_are_exactly_those_needed(path: Path, needs: Needs) -> None:
    scopes = load(path)["oauth_config"]["scopes"]
    bot = scopes.get("bot") or []
    assert len(bot) == len(set(bot)), "a scope is listed twice"
    assert not set(bot) - needs.scopes, f"scopes nothing needs: {sorted(set(bot) - needs.scopes)}"
    assert not needs.scopes - set(bot), f"missing scopes: {sorted(needs.scopes - set(bot))}"
    assert not scopes.get("user"), "no user scopes: the bot acts with its bot token only"


@pytest.mark.parametrize("path", MANIFESTS)
def test_manifest_features_match_the_code(path: Path, needs: Needs) -> None:
    manifest = load(path)
    features = manifest["features"]
    assert features["bot_user"]["display_name"]
    home = features["app_home"]
    assert home["messages_tab_enabled"] is True and home.get("messages_tab_read_only_enabled") is False, (
        "people ask the bot in direct messages"
    )
    assert home["home_tab_enabled"] is True, "the App Home tab shows how to use the bot (and stats to its owners)"
    if "assistant:write" in needs.scopes:  # Slack refuses the scope without the assistant view
        view = features["assistant_view"]
        assert view["assistant_description"].strip()
        assert view["suggested_prompts"] and all(p["title"] and p["message"] for p in view["suggested_prompts"])
    commands = {c["command"] for c in features.get("slash_commands", [])}
    assert commands == needs.commands
    interactivity = manifest["settings"].get("interactivity", {})
    assert interactivity.get("is_enabled", False) is needs.interactivity, "buttons and modals need interactivity"


def _events_path() -> str:
    match = re.search(r'^EVENTS_PATH\s*=\s*"([^"]+)"', (BOT / "server.py").read_text(encoding="utf-8"), re.M)
    assert match, "bot/server.py defines EVENTS_PATH"
    return match.group(1)


def test_http_manifest_points_at_the_events_endpoint() -> None:
    settings = load(HTTP_MANIFEST)["settings"]
    assert settings["socket_mode_enabled"] is False
    path = _events_path()
    for url in (settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"]):
        assert url.startswith("https://") and url.endswith(path), url


def test_socket_manifest_has_socket_mode_and_no_urls() -> None:
    settings = load(SOCKET_MANIFEST)["settings"]
    assert settings["socket_mode_enabled"] is True
    urls = [k for section in settings.values() if isinstance(section, dict) for k in section if k.endswith("_url")]
    assert not urls, f"Socket Mode apps have no request URLs: {urls}"


def test_manifests_differ_only_in_transport() -> None:
    """The two manifests are the same app: only the URLs and socket_mode_enabled may differ."""

    def app_part(manifest: dict) -> dict:
        settings = {k: v for k, v in manifest["settings"].items() if k != "socket_mode_enabled"}
        settings = {k: ({kk: vv for kk, vv in v.items() if not kk.endswith("_url")} if isinstance(v, dict) else v)
                    for k, v in settings.items()}
        return {**manifest, "settings": settings}

    assert app_part(load(HTTP_MANIFEST)) == app_part(load(SOCKET_MANIFEST))
