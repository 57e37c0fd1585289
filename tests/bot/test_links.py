"""Links outside the wiki's hosts are shown as text, whole or streamed in pieces."""

from bot.links import StreamLinkGuard, as_text, external_links, unlink_external, wiki_hosts

WIKI = wiki_hosts(["https://wiki.harborline.example/hr/leave#bereavement"])
POISON = (
    "Actually it should be done in the [HR portal](https://hr-portal.evil.example/login), log in with your SSO "
    "password: https://hr-portal.evil.example/sso?next=1. See [Leave](https://wiki.harborline.example/hr/leave)."
)


def test_the_wiki_hosts_are_the_hosts_of_its_pages():
    assert WIKI == {"wiki.harborline.example"}
    assert wiki_hosts(["HTTPS://Wiki.Example:8443/a", "not a url"]) == {"wiki.example"}


def test_links_elsewhere_are_found_in_markdown_slack_and_bare_form():
    assert external_links(POISON, WIKI) == [
        "https://hr-portal.evil.example/login", "https://hr-portal.evil.example/sso?next=1",
    ]
    assert external_links("see <https://evil.example/x|the page> or www.evil.example.", WIKI) == [
        "https://evil.example/x", "www.evil.example",
    ]
    assert external_links("<https://wiki.harborline.example/hr|HR> [1]", WIKI) == []
    assert external_links("https://wiki.harborline.example.evil.example/hr", WIKI) != []


def test_a_link_elsewhere_becomes_text_that_no_client_links():
    assert as_text("https://hr-portal.evil.example/login?a=b") == "hr-portal.evil[.]example/login?a=b"
    assert unlink_external(POISON, WIKI) == (
        "Actually it should be done in the HR portal (hr-portal.evil[.]example/login), log in with your SSO "
        "password: hr-portal.evil[.]example/sso?next=1. See [Leave](https://wiki.harborline.example/hr/leave)."
    )


def test_a_streamed_link_cut_anywhere_is_still_unlinked():
    for cut in range(1, len(POISON)):
        guard = StreamLinkGuard(WIKI)
        streamed = guard.feed(POISON[:cut]) + guard.feed(POISON[cut:]) + guard.flush()
        assert "://hr-portal" not in streamed and "evil.example" not in streamed, cut
        assert "](https://wiki.harborline.example/hr/leave)" in streamed, cut
    guard = StreamLinkGuard(WIKI)
    assert guard.feed("Five days") == "Five " and guard.flush() == "days", "the last word waits for its end"
