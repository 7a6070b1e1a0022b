#!/usr/bin/env python3
"""Reference scores for test/test_task_metrics.cpp: the TRACE per-task metrics computed by the Python packages
TRACE uses (BeyonderXX/TRACE, metrics.py and evaluations/eval_*.py), on a handful of hand-picked strings.

Writes test/fixtures/task_metrics.json (next to this script's repository root): the package versions, and per
metric a list of cases {inputs..., "score"} with scores on clora's 0-100 scale.

  rouge_l                  `rouge` 1.0.1: Rouge(metrics=["rouge-l"]).get_scores(reference, prediction, avg=True)
                           ["rouge-l"]["f"] * 100 (TRACE passes the reference first); 0 for an empty string.
  edit_similarity          fuzzywuzzy fuzz.ratio(prediction, reference) with python-Levenshtein; 0 for an empty
                           string (TRACE skips those examples).
  edit_similarity_difflib  the same through difflib.SequenceMatcher (fuzzywuzzy's fallback without
                           python-Levenshtein).
  py150_restore_literals   TRACE's eval_Py150.postprocess, restated here.
  sari_normalize, sari     Hugging Face's SARI metric script (evaluate's metrics/sari/sari.py, the code that
                           datasets.load_metric("sari") loads): normalize() and compute() on one example.

Needs, in the venv: rouge==1.0.1 fuzzywuzzy python-Levenshtein sacrebleu sacremoses evaluate.
The SARI script comes from the Hugging Face hub (evaluate.load("sari")) or, offline, from a local copy:

    /work/venv/bin/python dev/task_metrics_reference.py --sari-script /path/to/evaluate/metrics/sari/sari.py

(e.g. `git -C <evaluate checkout> show HEAD:metrics/sari/sari.py > /tmp/sari/sari.py`; set HF_HUB_OFFLINE=1
HF_EVALUATE_OFFLINE=1 when there is no network).
"""
import argparse
import difflib
import importlib.metadata
import importlib.util
import json
import os
import re

import evaluate
import fuzzywuzzy.fuzz as fuzz
import fuzzywuzzy.utils
from rouge import Rouge

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "test", "fixtures", "task_metrics.json")

# (prediction, reference): English summaries, repeated words, periods, case, German, empty strings.
ROUGE_CASES = [
    ("the cat sat on the mat", "the cat is on the mat"),
    ("police killed the gunman", "the gunman was killed by police"),
    ("A B C D. E F.", "A C. B D F G."),
    ("the the the cat", "the cat the dog the"),
    ("The Council approved the budget.", "the council approved the budget"),
    ("Der Stadtrat genehmigt das Budget für 2021.", "Der Stadtrat hat das Budget für 2021 genehmigt."),
    ("Über die Straße gehen Fußgänger.", "Fußgänger gehen über die Straße."),
    ("AN ORDINANCE relating to land use and zoning; amending Chapter 23.32 of the Seattle Municipal Code",
     "AN ORDINANCE relating to land use; amending Chapter 23.32 of the Seattle Municipal Code at page 112"),
    ("a b  c\td\n e", "a  b c d e"),
    ("x. . y", "y x"),
    ("identical text here", "identical text here"),
    ("", "a reference"),
    ("a prediction", ""),
    ("no overlap at all", "completely different words"),
]

# (prediction, reference): Py150-like code lines, ties of the half-to-even rounding, unicode, long strings.
EDIT_CASES = [
    ("return build_response ( path , data )", "return build_response ( path , data , http_status_code or 200 )"),
    ("self . assertEqual ( x , 1 )", "self . assertEqual ( y , 1 )"),
    ("kitten", "sitting"),
    ("a", "abbbbbbbbbbbbbbb"),  # 2 * 1 / 17
    ("a", "abbbbbbbbbbbbbb"),  # 2 * 1 / 16 = 0.125: 12.5 rounds to 12
    ("ab", "abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),  # 2 * 2 / 42
    ("abcd", "abcdefgh"),  # 2 * 4 / 12 = 66.67
    ("x", "xxx"),  # 50 exactly
    ("Grüße aus Zürich", "Gruesse aus Zuerich"),
    ("日本語のテキスト", "日本語テキスト"),
    ("abcxyzdefg", "defgxyzabc"),
    ("xabcabc", "abcxabc"),  # difflib's greedy blocks (4 characters) miss the LCS (6)
    ("abc", "a" + "z" * 37 + "b" + "z" * 37 + "c"),  # 0.075: Levenshtein 1 - 74/80 -> 7.4999.. -> 7, difflib 2*3/80 -> 7.5 -> 8
    ("for i in range ( 10 ) :", "for j in range ( 0 , 10 ) :"),
    ("same", "same"),
    ("", "reference"),
    ("prediction", ""),
    ("the quick brown fox jumps over the lazy dog " * 6, "the quick brown cat jumps over a lazy dog " * 6),
]

PY150_CASES = [
    "return build_response ( path , data , http_status_code or <NUM_LIT:200> )",
    'x = <NUM_LIT> + len ( "<STR_LIT>" ) + ord ( <CHAR_LIT> )',
    'path = "<STR_LIT:error>" ; sep = "<STR_LIT:/>" ; again = "<STR_LIT:error>"',
    "s = '<STR_LIT:a<b>' + '<STR_LIT:unclosed",
    "multi = '<STR_LIT:line one\nline two>'",
    "nothing to restore",
]

# texts for the 13a normalisation: punctuation, numbers, HTML entities, German, line breaks
NORMALIZE_CASES = [
    "About 95 species are currently accepted.",
    "Die Zahl stieg auf 1.000,5 Franken (+3,2%) - so der Bund.",
    "ÄRGER über GRÖSSE: „Zitat“ und ‹Guillemets›; ẞ and İstanbul.",
    'He said &quot;no&quot; &amp; left: 3-4 times, e.g. on 12.3.2021!',
    "Zeile eins-\nZeile zwei\nZeile drei <skipped> ende",
    "a.b,c 1.5 1,5 x. y, 5-3 a-b",
    "   ",
    "",
]

# (source, prediction, references): 20Minuten-like German texts, an exact copy, an empty prediction.
SARI_CASES = [
    ("About 95 species are currently accepted .", "About 95 you now get in .",
     ["About 95 species are currently known .", "About 95 species are now accepted .", "95 species are now accepted ."]),
    ("Provide a simplified version of the following paragraph in German.\n\nDer Bundesrat hat am Mittwoch "
     "beschlossen, die Massnahmen gegen das Coronavirus bis Ende Februar zu verlängern.\n\nSimplification:",
     "Der Bundesrat verlängert die Corona-Massnahmen bis Ende Februar.",
     ["Der Bundesrat hat die Massnahmen gegen das Coronavirus verlängert. Sie gelten bis Ende Februar."]),
    ("Wer seinen Führerausweis abgeben muss, hat heute keine Möglichkeit, sich gegen lange Verfahren zu wehren.",
     "Wer den Führerausweis abgeben muss, kann sich nicht gegen lange Verfahren wehren.",
     ["Wer seinen Führerausweis abgeben muss, kann sich heute nicht gegen lange Verfahren wehren."]),
    ("Die Polizei nahm den Mann fest.", "Die Polizei nahm den Mann fest.", ["Die Polizei nahm den Mann fest."]),
    ("Die Polizei nahm den Mann fest.", "", ["Der Mann wurde festgenommen."]),
    ("Die Polizei nahm den Mann fest.", "Polizei Polizei Polizei Mann Mann", ["Die Polizei hat den Mann."]),
    ("ÄRGER IN ZÜRICH: Die Stadt erhöht die Gebühren um 3,5 Prozent.",
     "Ärger in Zürich: Die Gebühren steigen um 3,5 Prozent.",
     ["In Zürich steigen die Gebühren.", "Die Stadt Zürich erhöht die Gebühren um 3,5 Prozent."]),
]


def trace_rouge_l(prediction, reference):
    if prediction == "" or reference == "":
        return 0.0  # TRACE's caculate_rouge skips the example
    scores = Rouge(metrics=["rouge-l"]).get_scores(reference, prediction, avg=True)
    return scores["rouge-l"]["f"] * 100


def trace_edit_similarity(prediction, reference):
    if prediction == "" or reference == "":
        return 0.0  # TRACE's caculate_fuzz skips the example
    return float(fuzz.ratio(prediction, reference))


def difflib_fuzz_ratio(prediction, reference):
    """fuzz.ratio as fuzzywuzzy computes it when python-Levenshtein is missing."""
    if prediction == "" or reference == "":
        return 0.0
    if prediction == reference:
        return 100.0
    return float(fuzzywuzzy.utils.intr(100 * difflib.SequenceMatcher(None, prediction, reference).ratio()))


def py150_restore_literals(code):
    """TRACE's eval_Py150.postprocess: bare placeholders first, then each <KIND_LIT:value> found to its value."""
    for placeholder, value in (("<NUM_LIT>", "0"), ("<STR_LIT>", ""), ("<CHAR_LIT>", "")):
        code = code.replace(placeholder, value)
    for kind, value in re.findall(r"<(STR|NUM|CHAR)_LIT:(.*?)>", code, re.S):
        code = code.replace(f"<{kind}_LIT:{value}>", value)
    return code


def load_sari(script):
    if script is None:
        return evaluate.load("sari"), None
    metric = evaluate.load(script)
    spec = importlib.util.spec_from_file_location("sari_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return metric, module


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sari-script", help="a local copy of evaluate's metrics/sari/sari.py")
    args = parser.parse_args()
    if fuzz.SequenceMatcher is difflib.SequenceMatcher:
        raise SystemExit("fuzzywuzzy does not find python-Levenshtein: pip install python-Levenshtein")
    sari_metric, sari_module = load_sari(args.sari_script)
    if sari_module is None:
        sari_module = importlib.import_module(type(sari_metric).__module__)

    versions = {name: importlib.metadata.version(name) for name in
                ("rouge", "fuzzywuzzy", "python-Levenshtein", "Levenshtein", "rapidfuzz", "sacrebleu", "evaluate")}
    fixture = {
        "generated_by": "dev/task_metrics_reference.py",
        "versions": versions,
        "rouge_l": [{"prediction": p, "reference": r, "score": trace_rouge_l(p, r)} for p, r in ROUGE_CASES],
        "edit_similarity": [{"prediction": p, "reference": r, "score": trace_edit_similarity(p, r)}
                            for p, r in EDIT_CASES],
        "edit_similarity_difflib": [{"prediction": p, "reference": r, "score": difflib_fuzz_ratio(p, r)}
                                    for p, r in EDIT_CASES],
        "py150_restore_literals": [{"code": c, "restored": py150_restore_literals(c)} for c in PY150_CASES],
        "sari_normalize": [{"text": t, "normalized": sari_module.normalize(t)} for t in NORMALIZE_CASES],
        "sari": [{"source": s, "prediction": p, "references": refs,
                  "score": sari_metric.compute(sources=[s], predictions=[p], references=[refs])["sari"]}
                 for s, p, refs in SARI_CASES],
    }
    with open(FIXTURE, "w", encoding="utf-8") as file:
        json.dump(fixture, file, ensure_ascii=False, indent=1)
        file.write("\n")
    print(f"wrote {os.path.normpath(FIXTURE)}: " +
          ", ".join(f"{key} {len(value)}" for key, value in fixture.items() if isinstance(value, list)))


if __name__ == "__main__":
    main()
