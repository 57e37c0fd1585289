import threading
from pathlib import Path

import pytest

from retrieval.ingest.sources import SourceError, load_source, page_url

HANDBOOK = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "18f-handbook" / "pages"

DUMP = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">
  <siteinfo><sitename>Wiki</sitename><dbname>wiki</dbname><base>http://w/</base><generator>MediaWiki 1.39</generator>
    <case>first-letter</case><namespaces><namespace key="0" case="first-letter" /></namespaces></siteinfo>
  <page><title>Claims Handling</title><ns>0</ns><id>1</id>
    <revision><id>10</id><timestamp>2024-01-01T00:00:00Z</timestamp><contributor><username>A</username><id>1</id></contributor>
      <model>wikitext</model><format>text/x-wiki</format>
      <text xml:space="preserve">Intro with a [[Link|link]].
== Water damage ==
Handled by the '''Property''' team.
=== Large losses ===
Over $50,000 goes to the {{Team|CAT}} desk.</text><sha1>x</sha1></revision></page>
  <page><title>Old Name</title><ns>0</ns><id>2</id><redirect title="Claims Handling" />
    <revision><id>11</id><timestamp>2024-01-01T00:00:00Z</timestamp><contributor><username>A</username><id>1</id></contributor>
      <model>wikitext</model><format>text/x-wiki</format><text xml:space="preserve">#REDIRECT [[Claims Handling]]</text><sha1>y</sha1></revision></page>
</mediawiki>"""


def dump_page(n: int, title: str, text: str | None) -> str:
    """A <page> of a MediaWiki dump; text None: a page without a <revision>."""
    revision = (
        f"<revision><id>{n}0</id><timestamp>2024-01-01T00:00:00Z</timestamp><contributor><username>A</username>"
        f"<id>1</id></contributor><model>wikitext</model><format>text/x-wiki</format>"
        f'<text xml:space="preserve">{text}</text><sha1>x</sha1></revision>'
    )
    return f"  <page><title>{title}</title><ns>0</ns><id>{n}</id>\n    {revision if text is not None else ''}</page>\n"


def dump_of(*pages: str) -> str:
    return DUMP[: DUMP.index("  <page>")] + "".join(pages) + "</mediawiki>"


CLAIMS = dump_page(1, "Claims Handling", "== Intake ==\nClaims are taken by phone.")
FRAUD = dump_page(2, "Fraud Referral", "== When ==\nRefer suspicious claims to the SIU within 3 days.")
SUBROGATION = dump_page(3, "Subrogation", "== Recovery ==\nWe recover costs from liable third parties.")
THREE_PAGES = dump_of(CLAIMS, FRAUD, SUBROGATION)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_markdown_front_matter_title_and_url_win(tmp_path: Path):
    write(tmp_path / "hr" / "leave.md", "---\ntitle: Sick Leave\nurl: https://intra/leave\n---\n## Days\nTen days.")
    write(tmp_path / "hr" / "expenses.md", "# Expense Policy\n\n## Meals\nUp to $60.")
    loaded = load_source(tmp_path, "https://wiki.example/")
    pages = {p.page_key: p for p in loaded.pages}
    assert pages["hr/leave"].title == "Sick Leave" and pages["hr/leave"].url == "https://intra/leave"
    assert pages["hr/expenses"].title == "Expense Policy"
    assert pages["hr/expenses"].url == "https://wiki.example/hr/expenses"
    assert loaded.failures == []


def test_html_page_keeps_headings_title_and_canonical_url(tmp_path: Path):
    write(
        tmp_path / "vpn.html",
        "<html><head><title>VPN Setup</title><link rel='canonical' href='https://w/vpn'></head><body>"
        "<nav>menu</nav><h2>Install</h2><p>Run the <b>installer</b>.</p><ul><li>Step one</li></ul></body></html>",
    )
    (page,) = load_source(tmp_path, None).pages
    assert (page.title, page.url) == ("VPN Setup", "https://w/vpn")
    assert "## Install" in page.body and "menu" not in page.body and "Step one" in page.body


def test_bad_files_are_reported_with_their_path_and_skipped(tmp_path: Path):
    write(tmp_path / "good.md", "# Good\ntext")
    write(tmp_path / "binary.md", b"\x89PNG\r\n\x1a\n\x00\x00data")
    write(tmp_path / "latin1.md", "caf\xe9".encode("latin-1"))
    write(tmp_path / "bad-yaml.md", "---\ntitle: [unclosed\n---\nbody")
    loaded = load_source(tmp_path, "https://w/")
    assert [p.page_key for p in loaded.pages] == ["good"]
    reasons = {Path(path).name: reason for path, reason in loaded.failures}
    assert reasons == {
        "bad-yaml.md": reasons["bad-yaml.md"],
        "binary.md": "binary file, not text",
        "latin1.md": "not UTF-8 text",
    }
    assert reasons["bad-yaml.md"].startswith("bad front matter")
    assert loaded.keep == {"bad-yaml", "binary", "latin1"}, "a page that cannot be read keeps its indexed version"


def test_dangling_symlink_is_a_failure_not_a_missing_page(tmp_path: Path):
    write(tmp_path / "good.md", "# Good\ntext")
    (tmp_path / "moved.md").symlink_to(tmp_path / "elsewhere" / "moved.md")
    loaded = load_source(tmp_path, "https://w/")
    assert loaded.failures == [(str(tmp_path / "moved.md"), f"broken symbolic link to {tmp_path}/elsewhere/moved.md")]
    assert loaded.keep == {"moved"}


def test_pages_without_text_are_skipped_with_the_reason_not_failed(tmp_path: Path):
    write(tmp_path / "good.md", "# Good\ntext")
    write(tmp_path / "stub.md", "---\ntitle: Billing policy\nredirect_to: /tock/#billing\n---\n")
    write(tmp_path / "moved.html", '<html><head><meta http-equiv="refresh" content="0; url=/new/"></head><body></body>')
    write(tmp_path / "empty.html", "<html><body><div><p></div></body>")
    loaded = load_source(tmp_path, "https://w/")
    assert [p.page_key for p in loaded.pages] == ["good"] and loaded.failures == []
    assert {Path(path).name: reason for path, reason in loaded.skipped} == {
        "stub.md": "redirect to /tock/#billing",
        "moved.html": "redirect to /new/",
        "empty.html": "no text",
    }
    assert loaded.keep == set(), "a page without text has nothing to keep indexed"


@pytest.mark.skipif(not HANDBOOK.is_dir(), reason="the 18F handbook is not in shared/corpora")
def test_18f_handbook_redirect_stubs_are_skipped_and_nothing_fails():
    loaded = load_source(HANDBOOK, "https://handbook.tts.gsa.gov/{path}/")
    assert loaded.failures == []
    assert len(loaded.skipped) == 8 and all(reason.startswith("redirect to ") for _, reason in loaded.skipped)
    assert len(loaded.pages) == len(list(HANDBOOK.rglob("*.md"))) - 8


def test_a_page_over_the_size_limit_is_skipped_unread_and_kept(tmp_path: Path):
    write(tmp_path / "small.md", "# Small\ntext")
    write(tmp_path / "huge.md", "# Huge\n" + "log line\n" * 300_000)
    loaded = load_source(tmp_path, "https://w/", max_page_bytes=2_000_000)
    assert [p.page_key for p in loaded.pages] == ["small"] and loaded.failures == []
    assert loaded.skipped == [(str(tmp_path / "huge.md"), "too large (2.7 MB, over WIKIBOT_INGEST_MAX_PAGE_MB = 2)")]
    assert loaded.keep == {"huge"}
    dump = load_source(write(tmp_path / "dump.xml", dump_of(dump_page(1, "Huge", "x" * 2_100_000))), "https://w/", 2_000_000)
    assert dump.skipped == [(f"{tmp_path}/dump.xml#Huge", "too large (2.1 MB, over WIKIBOT_INGEST_MAX_PAGE_MB = 2)")]


def test_a_set_stop_returns_an_incomplete_source(tmp_path: Path):
    write(tmp_path / "a.md", "# A\ntext")
    stop = threading.Event()
    stop.set()
    loaded = load_source(tmp_path, "https://w/", stop=stop)
    assert loaded.pages == [] and not loaded.complete, "an incomplete source deletes nothing"


def test_pages_without_url_need_a_base_url(tmp_path: Path):
    write(tmp_path / "a.md", "# A\ntext")
    loaded = load_source(tmp_path, None)
    assert loaded.pages == [] and "--base-url" in loaded.failures[0][1]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "no such file or folder"),
        (lambda p: write(p / "empty" / "notes.txt", "x").parent, r"no Markdown \(\.md\) or HTML \(\.html\) files"),
        (lambda p: write(p / "dump.xml", "<mediawiki><page><title>"), "not a readable MediaWiki XML dump"),
        (lambda p: write(p / "file.pdf", "x"), "expected a folder"),
    ],
)
def test_unusable_sources_raise_a_clear_error(tmp_path: Path, make, message):
    with pytest.raises(SourceError, match=message):
        load_source(make(tmp_path), "https://w/")


def test_mediawiki_dump_keeps_sections_and_skips_redirects(tmp_path: Path):
    loaded = load_source(write(tmp_path / "dump.xml", DUMP), "https://wiki.example/index.php/{path}")
    (page,) = loaded.pages
    assert loaded.skipped == [(f"{tmp_path}/dump.xml#Old Name", "redirect to Claims Handling")]
    assert page.title == "Claims Handling"
    assert page.url == "https://wiki.example/index.php/Claims_Handling"
    assert "## Water damage" in page.body and "### Large losses" in page.body
    assert "'''" not in page.body and "[[" not in page.body


def test_dump_cut_off_in_a_page_reports_it_and_is_incomplete(tmp_path: Path):
    cut = THREE_PAGES[: THREE_PAGES.index("suspicious")]
    loaded = load_source(write(tmp_path / "dump.xml", cut), "https://w/{path}")
    assert [p.page_key for p in loaded.pages] == ["Claims Handling"]
    assert not loaded.complete, "pages after the cut are unknown: none may be deleted"
    (page, page_reason), (source, source_reason) = loaded.failures
    assert (page, page_reason) == (f"{tmp_path}/dump.xml#Fraud Referral", "the dump breaks off in this page")
    assert source == str(tmp_path / "dump.xml") and "cut off" in source_reason
    assert loaded.keep == {"Fraud Referral"}


def test_dump_cut_off_after_the_last_page_is_incomplete(tmp_path: Path):
    loaded = load_source(write(tmp_path / "dump.xml", THREE_PAGES[:-5]), "https://w/{path}")
    assert len(loaded.pages) == 3 and not loaded.complete and len(loaded.failures) == 1


def test_dump_page_without_revision_is_a_failure(tmp_path: Path):
    dump = dump_of(dump_page(1, "Claims Handling", "Claims are taken by phone."), dump_page(2, "Empty", None))
    loaded = load_source(write(tmp_path / "dump.xml", dump), "https://w/{path}")
    assert loaded.failures == [(f"{tmp_path}/dump.xml#Empty", "no <revision> in the dump")]
    assert loaded.keep == {"Empty"} and loaded.complete


def test_mediawiki_dump_needs_base_url(tmp_path: Path):
    with pytest.raises(SourceError, match="--base-url"):
        load_source(write(tmp_path / "dump.xml", DUMP), None)


def test_page_url_template():
    assert page_url("https://h/{path}/", "travel/leave") == "https://h/travel/leave/"
    assert page_url("https://h", "a b") == "https://h/a%20b"
