"""Problem-set loaders on the real files in ../shared/data, MMLU-ProX on files built here with the real
schema, generic files with a column mapping, splits, and clear errors for malformed files."""

import json
import os
from collections import Counter

import pytest

from pivotrl.data import DataError, DataFormatError, load_problems, split_of
from pivotrl.languages import MGSM_LANGS, MSVAMP_LANGS
from pivotrl.records import Problem


def test_mgsm_all_languages(data_dir):
    problems = load_problems("mgsm", data_dir=data_dir)
    counts = Counter(p.lang for p in problems)
    assert counts == {lang: 250 for lang in MGSM_LANGS}
    by_id = {}
    for p in problems:
        by_id.setdefault(p.id, []).append(p)
    assert len(by_id) == 250
    for versions in by_id.values():  # parallel: same gold answer and English question in every language
        assert len({v.answer for v in versions}) == 1
        assert len({v.question_en for v in versions}) == 1
    de = next(p for p in problems if p.lang == "de" and p.id == "mgsm-000")
    assert de.question.startswith("Janets Enten legen 16 Eier")
    assert de.answer == "18" and de.question_en.startswith("Janet’s ducks lay 16 eggs")
    assert de.meta["gsm8k_id"] == "gsm8k-test-00000"
    assert any(p.answer == "114200" for p in problems)  # "114,200" in the file, read as a number


def test_msvamp_parallel(data_dir):
    problems = load_problems("msvamp", data_dir=data_dir)
    assert Counter(p.lang for p in problems) == {lang: 1000 for lang in MSVAMP_LANGS}
    en = {p.id: p for p in problems if p.lang == "en"}
    zh = {p.id: p for p in problems if p.lang == "zh"}
    assert en.keys() == zh.keys()
    for pid in list(en)[:50]:
        assert zh[pid].question_en == en[pid].question  # the English `query` beside each `m_query`
        assert zh[pid].answer == en[pid].answer
    assert en["msvamp-0000"].answer == "8"  # "8.0" in the file


def test_gsm8k_parts_and_rationales(data_dir):
    train = load_problems("gsm8k", data_dir=data_dir)
    test = load_problems("gsm8k", data_dir=data_dir, subset="test")
    assert (len(train), len(test)) == (7473, 1319)
    first = test[0]
    assert first.answer == "18" and first.id == "gsm8k-test-00000"
    assert "<<" not in first.solution and first.solution.endswith("The answer is 18.")
    assert all(p.solution.endswith(f"The answer is {p.answer}.") for p in train)
    with pytest.raises(DataError, match="gsm8k has no language de; it has en"):
        load_problems("gsm8k", "de", data_dir=data_dir)


def test_n_and_split_keep_languages_parallel(data_dir):
    problems = load_problems("mgsm", "de,zh", n=5, data_dir=data_dir)
    assert [p.id for p in problems if p.lang == "de"] == [p.id for p in problems if p.lang == "zh"]
    assert len(problems) == 10
    held = load_problems("msvamp", "de,sw", split="held-out", data_dir=data_dir)
    train = load_problems("msvamp", "de,sw", split="train", data_dir=data_dir)
    held_ids = {p.id for p in held}
    assert held_ids.isdisjoint(p.id for p in train)
    assert {p.id for p in held if p.lang == "de"} == {p.id for p in held if p.lang == "sw"}
    assert 150 <= len(held_ids) <= 250  # about 20% of 1000
    assert split_of("msvamp-0001") == split_of("msvamp-0001")
    assert len({split_of(f"x-{i}", seed=s) for i in range(50) for s in (0, 1)}) == 2


def test_synthetic_is_the_embedded_default():
    problems = load_problems("synthetic", "en,de,ja", n=4)
    assert len(problems) == 12 and {p.source for p in problems} == {"synthetic"}
    assert problems == load_problems("synthetic", "en,de,ja", n=4)


# --------------------------------------------------------------------------- MMLU-ProX (real schema)

def _mmlu_rows(lang, n=3, bad_answer=False):
    rows = []
    for i in range(n):
        row = {"question_id": 100 + i, "question": f"[{lang}] Question {i}?", "answer": "C", "answer_index": 2,
               "cot_content": "A: Let's think step by step. The answer is (C).", "category": "math",
               "src": "ori_mmlu-math", "question_id_src": 100 + i}
        for k in range(10):
            row[f"option_{k}"] = f"option {k}" if k < 8 else None  # two missing options, as in MMLU-Pro
        if bad_answer and i == 1:
            row["answer"] = "Z"
        rows.append(row)
    return rows


def _write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_mmlu_prox_local_parquet_and_arrow(tmp_path):
    _write_parquet(tmp_path / "mmlu_prox" / "de" / "test-00000-of-00001.parquet", _mmlu_rows("de"))
    _write_parquet(tmp_path / "mmlu_prox" / "de" / "validation-00000-of-00001.parquet", _mmlu_rows("de", 1))
    _write_parquet(tmp_path / "mmlu_prox" / "en" / "test-00000-of-00001.parquet", _mmlu_rows("en"))
    import datasets

    ds = datasets.Dataset.from_list(_mmlu_rows("sw"))
    (tmp_path / "mmlu_prox" / "sw").mkdir(parents=True)
    ds.save_to_disk(str(tmp_path / "saved"))
    arrow = next((tmp_path / "saved").glob("*.arrow"))
    arrow.rename(tmp_path / "mmlu_prox" / "sw" / "test.arrow")

    problems = load_problems("mmlu_prox", "de,sw", data_dir=tmp_path)
    assert len(problems) == 6
    p = problems[0]
    assert p.answer_type == "choice" and p.answer == "C" and len(p.choices) == 8
    assert p.id == "mmlu_prox-100" and p.question_en == "[en] Question 0?"
    assert p.meta["category"] == "math"
    assert len(load_problems("mmlu_prox", "de", data_dir=tmp_path, subset="validation")) == 1


def test_mmlu_prox_bad_answer_names_row_and_field(tmp_path):
    _write_parquet(tmp_path / "mmlu_prox" / "de" / "test.parquet", _mmlu_rows("de", bad_answer=True))
    with pytest.raises(DataFormatError, match=r"test\.parquet, line 2: field 'answer': expected a letter A-H"):
        load_problems("mmlu_prox", "de", data_dir=tmp_path)


# --------------------------------------------------------------------------- generic files


def test_generic_files_with_column_mapping(tmp_path):
    rows = [{"uid": "a1", "prompt": "Wie viel ist 2+3?", "gold": "5", "language": "German"},
            {"uid": "a2", "prompt": "2+2?", "gold": "1,000", "language": "en"}]
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    columns = {"id": "uid", "question": "prompt", "answer": "gold", "lang": "language"}
    problems = load_problems(str(jsonl), columns=columns)
    assert problems[0] == Problem(id="a1", lang="de", question="Wie viel ist 2+3?", answer="5", source="mine")
    assert problems[1].answer == "1000" and problems[1].question_en == "2+2?"

    csv = tmp_path / "mine.csv"
    csv.write_text("prompt,gold\n\"Sema, 2+3?\",5\n", encoding="utf-8")
    (p,) = load_problems(str(csv), "sw", columns={"question": "prompt", "answer": "gold"})
    assert (p.lang, p.question, p.id) == ("sw", "Sema, 2+3?", "mine-2")

    _write_parquet(tmp_path / "mine.parquet", [{"question": "q", "answer": "B", "choices": ["x", "y", "z"]}])
    (p,) = load_problems(str(tmp_path / "mine.parquet"), "en", answer_type="choice")
    assert p.choices == ("x", "y", "z") and p.answer == "B"


@pytest.mark.parametrize("name, content, expected", [
    ("bad.jsonl", '{"question": "q", "answer": "1"}\n{"question": "q2", "answer": "abc"}\n',
     r"bad\.jsonl, line 2: field 'answer': expected a number, found 'abc'"),
    ("bad.jsonl", '{"question": "q", "answer": "1"}\n{oops\n', r"bad\.jsonl, line 2: not valid JSON"),
    ("bad.csv", "question,answer\nq,1\n,2\n", r"bad\.csv, line 3: field 'question': missing"),
    ("bad.jsonl", '{"question": "q", "answer": "1", "lang": "xx"}\n', r"line 1: field 'lang': unknown language"),
])
def test_generic_file_errors(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError, match=expected):
        load_problems(str(path), "en")


# --------------------------------------------------------------------------- malformed benchmark files


def _copy_dir(data_dir, tmp_path, folder):
    import shutil

    shutil.copytree(data_dir / folder, tmp_path / folder)
    return tmp_path / folder


def test_malformed_mgsm(data_dir, tmp_path):
    folder = _copy_dir(data_dir, tmp_path, "mgsm")
    lines = (folder / "mgsm_de.tsv").read_text(encoding="utf-8").splitlines()
    lines[6] = lines[6].split("\t")[0]  # line 7 loses its answer column
    (folder / "mgsm_de.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"mgsm_de\.tsv, line 7: expected 2 tab-separated columns"):
        load_problems("mgsm", "de", data_dir=tmp_path)
    lines[6] = "Eine Frage?\tzwölf"
    (folder / "mgsm_de.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"mgsm_de\.tsv, line 7: field 'answer': expected a number"):
        load_problems("mgsm", "de", data_dir=tmp_path)


def test_malformed_msvamp_and_gsm8k(data_dir, tmp_path):
    folder = _copy_dir(data_dir, tmp_path, "msvamp")
    path = folder / "test_German.json"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[41])
    del row["m_query"]
    lines[41] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"test_German\.json, line 42: field 'm_query'"):
        load_problems("msvamp", "de", data_dir=tmp_path)

    gsm = tmp_path / "gsm8k"
    gsm.mkdir()
    (gsm / "train.jsonl").write_text('{"question": "q", "answer": "no final marker"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"train\.jsonl, line 1: field 'answer': expected a rationale"):
        load_problems("gsm8k", data_dir=tmp_path)


def test_unknown_names_and_missing_things(data_dir, tmp_path):
    with pytest.raises(DataError, match="unknown problem set 'mgsn'"):
        load_problems("mgsn")
    with pytest.raises(DataError, match="mgsm has no language ko"):
        load_problems("mgsm", "ko", data_dir=data_dir)
    with pytest.raises(DataError, match="no MGSM files"):
        load_problems("mgsm", "de", data_dir=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_problems("mgsm", "de", data_dir=tmp_path / "nope")


@pytest.mark.parametrize("encoding, bom", [("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"),
                                           ("utf-16-be", b"\xfe\xff")])
def test_files_as_other_tools_save_them(tmp_path, encoding, bom):
    # Notepad and Excel's "UTF-8" add a byte-order mark; PowerShell's `>` writes UTF-16 with one
    rows = [{"question": "Wie viel ist 2 + 3?", "answer": "5", "lang": "de"},
            {"question": "Combien font 4 + 4 ?", "answer": "8", "lang": "fr"}]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_bytes(bom + "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode(encoding))
    csv_file = tmp_path / "p.csv"
    csv_file.write_bytes(bom + "question,answer,lang\nWie viel ist 2 + 3?,5,de\nCombien font 4 + 4 ?,8,fr\n"
                         .encode(encoding))
    for path in (jsonl, csv_file):
        problems = load_problems(str(path))
        assert [(p.lang, p.question, p.answer) for p in problems] == [
            ("de", "Wie viel ist 2 + 3?", "5"), ("fr", "Combien font 4 + 4 ?", "8")]


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"  # a spreadsheet's "CSV" in Windows-1252
    path.write_bytes("question,answer,lang\nWie viel ist 2 + 3?,5,de\nWas kostet ein Brötchen?,1,de\n"
                     .encode("cp1252"))
    with pytest.raises(ValueError, match=r"latin1\.csv, line 3: not UTF-8 text \(byte 0xf6 .*save the file as UTF-8"):
        load_problems(str(path))
    jsonl = tmp_path / "latin1.jsonl"
    jsonl.write_bytes(b'{"question": "ok?", "answer": "1", "lang": "de"}\n'
                      b'{"question": "Br\xf6tchen?", "answer": "2", "lang": "de"}\n')
    with pytest.raises(ValueError, match=r"latin1\.jsonl, line 2: not UTF-8"):
        load_problems(str(jsonl))


def test_parallel_sets_must_line_up(data_dir, tmp_path):
    folder = _copy_dir(data_dir, tmp_path, "mgsm")
    lines = (folder / "mgsm_de.tsv").read_text(encoding="utf-8").splitlines()
    (folder / "mgsm_de.tsv").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # one problem short
    with pytest.raises(DataError, match=r"MGSM files do not line up \(mgsm_en\.tsv: 250, mgsm_de\.tsv: 249 rows\)"):
        load_problems("mgsm", "de", data_dir=tmp_path)
    folder = _copy_dir(data_dir, tmp_path, "msvamp")
    path = folder / "test_Chinese.json"
    path.write_text("\n".join(path.read_text(encoding="utf-8").splitlines()[:-3]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"MSVAMP files do not line up \(test_English\.json: 1000, "
                                        r"test_Chinese\.json: 997 rows\)"):
        load_problems("msvamp", "zh", data_dir=tmp_path)


# --------------------------------------------------------------------------- well-formed but wrong data


def test_an_id_used_twice_names_the_file_both_lines_and_the_id(tmp_path):
    rows = [{"id": "p1", "question": "2+2?", "answer": "4", "lang": "de"},
            {"id": "p1", "question": "2+2?", "answer": "4", "lang": "fr"},  # the same problem in another language
            {"id": "p2", "question": "3+3?", "answer": "6", "lang": "de"},
            {"id": "p1", "question": "5+5?", "answer": "10", "lang": "de"}]  # would never be asked
    jsonl = tmp_path / "dup.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"dup\.jsonl, line 4: field 'id': id 'p1' \(de\) is already used on "
                                              r"line 1: lines 1 and 4 have the same id"):
        load_problems(str(jsonl))
    csv_file = tmp_path / "dup.csv"  # line numbers count the header line, as a spreadsheet shows them
    csv_file.write_text("key,question,answer\nx,1+1?,2\ny,2+2?,4\nx,3+3?,6\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"dup\.csv, line 4: field 'key': id 'x' \(de\) is already used on "
                                              r"line 2: lines 2 and 4"):
        load_problems(str(csv_file), "de", columns={"id": "key"})
    rows.pop()
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert [(p.id, p.lang) for p in load_problems(str(jsonl))] == [("p1", "de"), ("p1", "fr"), ("p2", "de")]


def test_real_msvamp_queries_equal_the_english_questions(data_dir):
    # Measured on the real files: all 9 x 1000 `query` fields equal the English file's `m_query` exactly.
    problems = load_problems("msvamp", data_dir=data_dir)
    english = {p.id: p.question for p in problems if p.lang == "en"}
    assert all(p.question_en == english[p.id] for p in problems)


def test_swapped_msvamp_lines_are_refused_naming_both_questions(data_dir, tmp_path):
    folder = _copy_dir(data_dir, tmp_path, "msvamp")
    path = folder / "test_German.json"
    lines = path.read_text(encoding="utf-8").splitlines()
    first, second = json.loads(lines[41])["query"], json.loads(lines[42])["query"]
    lines[41], lines[42] = lines[42], lines[41]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        load_problems("msvamp", "de", data_dir=tmp_path)
    message = str(caught.value)
    assert "test_German.json, line 42: field 'query'" in message and "line 42 of test_English.json" in message
    assert second[:60] in message and first[:60] in message
    assert "it is the English question of line 43: lines swapped or shifted?" in message
    load_problems("msvamp", "zh", data_dir=tmp_path)  # the other languages are untouched


def test_msvamp_query_white_space_does_not_matter_a_changed_word_does(data_dir, tmp_path):
    folder = _copy_dir(data_dir, tmp_path, "msvamp")
    path = folder / "test_Swahili.json"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[7])
    row["query"] = "  " + row["query"].replace(" ", "  ") + "\n"
    lines[7] = json.dumps(row, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(load_problems("msvamp", "sw", data_dir=tmp_path)) == 1000
    row = json.loads(lines[8])
    row["query"] = row["query"].replace(" ", " not ", 1)
    lines[8] = json.dumps(row, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"test_Swahili\.json, line 9: field 'query'.*a row of another problem"):
        load_problems("msvamp", "sw", data_dir=tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_files_that_are_not_regular_files_say_what_they_are(tmp_path):
    fifo = tmp_path / "problems.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"problems\.jsonl is a named pipe \(FIFO\), not a regular file"):
        load_problems(str(fifo), "en")  # never opened: reading a pipe would wait for a writer
    if os.path.exists("/dev/zero"):
        with pytest.raises(DataError, match=r"/dev/zero is a character device, not a regular file"):
            load_problems("/dev/zero", "en")
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(DataError, match=r"folder\.jsonl is a folder, not a regular file"):
        load_problems(str(tmp_path / "folder.jsonl"), "en")
    with pytest.raises(DataError, match="no such file"):
        load_problems(str(tmp_path / "missing.jsonl"), "en")
    mgsm = tmp_path / "data" / "mgsm"
    mgsm.mkdir(parents=True)
    (mgsm / "mgsm_en.tsv").write_text("2+2?\t4\n", encoding="utf-8")
    os.mkfifo(mgsm / "mgsm_de.tsv")
    with pytest.raises(DataError, match=r"MGSM file .*mgsm_de\.tsv is a named pipe"):
        load_problems("mgsm", "de", data_dir=tmp_path / "data")
