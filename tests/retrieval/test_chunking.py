from retrieval.ingest.chunking import SectionChunker, anchor
from retrieval.models import SourcePage


def page(body: str, title: str = "Water Damage Claims") -> SourcePage:
    return SourcePage("claims/water", title, "https://wiki/claims/water", body, "claims/water.md")


def test_headings_become_section_path_and_anchor():
    body = "# Water Damage Claims\nIntro text.\n\n## Who Handles It\nThe Property team.\n\n### Above $25,000\nEscalate."
    chunks = SectionChunker().split(page(body))
    assert [(c.section, c.url) for c in chunks] == [
        ("", "https://wiki/claims/water"),
        ("Who Handles It", "https://wiki/claims/water#who-handles-it"),
        ("Who Handles It > Above $25,000", "https://wiki/claims/water#above-25000"),
    ]
    assert chunks[2].text == "Escalate."
    assert [c.position for c in chunks] == [0, 1, 2]


def test_long_section_is_split_and_keeps_its_heading():
    body = "## Rules\n" + "\n\n".join(f"Rule {i}: " + "deductible applies " * 20 for i in range(10))
    chunks = SectionChunker(chunk_size=400, chunk_overlap=50).split(page(body))
    assert len(chunks) > 3
    assert all(c.section == "Rules" and len(c.text) <= 400 for c in chunks)


def test_template_tags_and_empty_sections_are_dropped():
    body = "## A\n{% alert 'x' %}Keep this.{% endalert %}\n\n## Empty\n\n## B\n{{ site.url }} text"
    chunks = SectionChunker().split(page(body))
    assert [(c.section, c.text) for c in chunks] == [("A", "Keep this."), ("B", "text")]


def test_embedding_input_carries_title_and_section():
    chunk = SectionChunker().split(page("## Deductibles\n$500 per claim."))[0]
    assert chunk.embedding_input.startswith("Water Damage Claims > Deductibles\n")
    assert chunk.content_hash != SectionChunker().split(page("## Deductibles\n$1,000 per claim."))[0].content_hash


def test_anchor_matches_wiki_renderers():
    assert anchor("Who handles it?") == "who-handles-it"
    assert anchor("Café  & Más") == "cafe-mas"
