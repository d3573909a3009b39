"""Reading uploaded worker files: what MTurk's requester site exports, what Excel makes of it, and garbage.

The examples are shaped like the real exports (a batch results CSV, the requester site's worker file); the
properties check that no input escapes as anything but WorkerFileError, and that valid lists survive any
CSV dialect or plain layout they could be written in.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import tracemalloc

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.requests import INT32_MAX, INT32_MIN, WORKER_ID_PATTERN, WorkerTarget
from bot.worker_files import WorkerFile, WorkerFileError, parse_worker_file

QUAL_NAME = "Passed screener"

# A batch results CSV as the requester site exports it: every field quoted, answers with commas, quotes and
# newlines, and one worker (A2FIRSTWORKER01) who did two assignments.
BATCH_RESULTS = (
    '"HITId","HITTypeId","Title","Description","Keywords","Reward","CreationTime","MaxAssignments",'
    '"RequesterAnnotation","AssignmentDurationInSeconds","AutoApprovalDelayInSeconds","Expiration",'
    '"NumberOfSimilarHITs","LifetimeInSeconds","AssignmentId","WorkerId","AssignmentStatus","AcceptTime",'
    '"SubmitTime","AutoApprovalTime","ApprovalTime","RejectionTime","RequesterFeedback","WorkTimeInSeconds",'
    '"LifetimeApprovalRate","Last30DaysApprovalRate","Last7DaysApprovalRate","Input.image_url","Answer.q1"\r\n'
    '"3AQN9REUTFGXCRWFYGRDMGN0BFWDYK","3HYV4299H0WQ9RZUIXFNUQ2RRHM8E9","Describe an image, briefly",'
    '"Look at the picture and describe it","image, describe","$0.25","Mon Mar 04 10:12:33 PST 2024","3",'
    '"BatchId:5123456;","600","259200","Thu Mar 07 10:12:33 PST 2024","","","3K4J6M3CXF8HRV0Q1RBSHB4Y2QBAG1",'
    '"A2FIRSTWORKER01","Submitted","Mon Mar 04 10:15:01 PST 2024","Mon Mar 04 10:17:45 PST 2024",'
    '"Thu Mar 07 10:17:45 PST 2024","","","","164","100% (12/12)","100% (12/12)","100% (12/12)",'
    '"https://example.org/img/1.jpg","A dog, a cat, and a ""very"" small bird"\r\n'
    '"3AQN9REUTFGXCRWFYGRDMGN0BFWDYK","3HYV4299H0WQ9RZUIXFNUQ2RRHM8E9","Describe an image, briefly",'
    '"Look at the picture and describe it","image, describe","$0.25","Mon Mar 04 10:12:33 PST 2024","3",'
    '"BatchId:5123456;","600","259200","Thu Mar 07 10:12:33 PST 2024","","","3TPWUS5F8AJ5LH0CMFIDV5QK2Y5WC1",'
    '"A3SECONDWORKER2","Approved","Mon Mar 04 10:20:11 PST 2024","Mon Mar 04 10:29:02 PST 2024",'
    '"Thu Mar 07 10:29:02 PST 2024","Tue Mar 05 09:00:00 PST 2024","","Thanks!","531","98% (49/50)",'
    '"98% (49/50)","100% (7/7)","https://example.org/img/1.jpg","First line of the answer.\r\n'
    "Second line, with a comma.\r\n"
    'Third line."\r\n'
    '"3BFNCI9LYKQ2ENUQGAHAGZ1QPXJ73B","3HYV4299H0WQ9RZUIXFNUQ2RRHM8E9","Describe an image, briefly",'
    '"Look at the picture and describe it","image, describe","$0.25","Mon Mar 04 10:12:34 PST 2024","3",'
    '"BatchId:5123456;","600","259200","Thu Mar 07 10:12:34 PST 2024","","","39DD6S19JQPW0LMXVV6T0SRCUPDEZ1",'
    '"A2FIRSTWORKER01","Submitted","Mon Mar 04 10:31:40 PST 2024","Mon Mar 04 10:33:12 PST 2024",'
    '"Thu Mar 07 10:33:12 PST 2024","","","","92","100% (13/13)","100% (13/13)","100% (13/13)",'
    '"https://example.org/img/2.jpg","Trees."\r\n'
    '"3BFNCI9LYKQ2ENUQGAHAGZ1QPXJ73B","3HYV4299H0WQ9RZUIXFNUQ2RRHM8E9","Describe an image, briefly",'
    '"Look at the picture and describe it","image, describe","$0.25","Mon Mar 04 10:12:34 PST 2024","3",'
    '"BatchId:5123456;","600","259200","Thu Mar 07 10:12:34 PST 2024","","","3QAPZX2QN5SIWEC9Z9ZWKBCL0ZE20W",'
    '"A1THIRDWORKER03","Rejected","Mon Mar 04 11:02:09 PST 2024","Mon Mar 04 11:02:30 PST 2024",'
    '"Thu Mar 07 11:02:30 PST 2024","","Tue Mar 05 09:01:00 PST 2024","Answer was empty","21","88% (7/8)",'
    '"88% (7/8)","88% (7/8)","https://example.org/img/2.jpg",""\r\n'
)

# The requester site's worker file (Manage › Workers › Download CSV), edited to set scores: blank UPDATE-
# cells mean "no change", and "Revoke" is how the site removes a qualification.
WORKER_FILE_HEADER = '"Worker ID","UPDATE BlockStatus","BlockReason","CURRENT-Passed screener","UPDATE-Passed screener"'


def parse(
    content: bytes | str,
    *,
    default_value: int | None = None,
    qualification_name: str | None = QUAL_NAME,
    max_workers: int = 500,
    filename: str = "",
) -> WorkerFile:
    data = content.encode() if isinstance(content, str) else content
    return parse_worker_file(
        data,
        default_value=default_value,
        qualification_name=qualification_name,
        max_workers=max_workers,
        filename=filename,
    )


def errors_of(content: bytes | str, **kwargs: object) -> list[str]:
    with pytest.raises(WorkerFileError) as raised:
        parse(content, **kwargs)  # type: ignore[arg-type]
    assert raised.value.errors, "a WorkerFileError always says what is wrong"
    return raised.value.errors


# --- the batch results CSV ---------------------------------------------------------------------------------


def test_batch_results_csv_gives_each_worker_once_in_file_order_with_the_default_value() -> None:
    result = parse(BATCH_RESULTS, default_value=3)
    assert result.workers == (
        WorkerTarget("A2FIRSTWORKER01", 3),
        WorkerTarget("A3SECONDWORKER2", 3),
        WorkerTarget("A1THIRDWORKER03", 3),
    )
    assert not result.per_worker_values
    assert result.skipped_rows == 0
    assert result.description == "WorkerId column, 3 workers"


def test_batch_results_csv_without_a_default_leaves_the_value_to_mturk() -> None:
    assert {w.integer_value for w in parse(BATCH_RESULTS).workers} == {None}


def test_line_numbers_count_physical_lines_after_a_multi_line_answer() -> None:
    # The second assignment's answer spans lines 3-5, so the third record starts on line 6.
    broken = BATCH_RESULTS.replace(
        '"A2FIRSTWORKER01","Submitted","Mon Mar 04 10:31', '"a2firstworker01","Submitted","Mon Mar 04 10:31'
    )
    assert errors_of(broken) == [
        "line 6: `a2firstworker01` is not an MTurk worker ID (they are upper-case, starting with A)"
    ]
    broken = BATCH_RESULTS.replace('"A1THIRDWORKER03"', '"THIRD WORKER"')
    assert errors_of(broken) == ["line 7: `THIRD WORKER` is not an MTurk worker ID"]


def test_windows_excel_resave_in_cp1252_still_reads() -> None:
    content = "WorkerId,Answer.q1\r\nA1JOSE0000001,Très bien – merci\r\nA1ZOE00000002,naïve\r\n".encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")
    assert [w.worker_id for w in parse(content).workers] == ["A1JOSE0000001", "A1ZOE00000002"]


def test_utf8_bom_from_excel_csv_utf8_does_not_hide_the_header() -> None:
    content = "\ufeffWorkerId,Answer\r\nA1BOM00000001,ok\r\n".encode()
    assert parse(content).workers == (WorkerTarget("A1BOM00000001", None),)


@pytest.mark.parametrize(
    ("content", "description"),
    [
        ("WorkerId;Answer.q1\r\nA1SEMI0000001;1,5\r\nA1SEMI0000002;2,5\r\n", "WorkerId column, 2 workers"),
        ("sep=;\r\nWorker ID;Note\r\nA1SEMI0000001;x\r\nA1SEMI0000002;y\r\n", "Worker ID column, 2 workers"),
        ("worker_id\tnote\nA1SEMI0000001\ta, b\nA1SEMI0000002\tc\n", "worker_id column, 2 workers"),
        ('"Name, full";workerid\r\nAda;A1SEMI0000001\r\nBob;A1SEMI0000002\r\n', "workerid column, 2 workers"),
        ("WorkerId\nA1SEMI0000001\nA1SEMI0000002\n", "WorkerId column, 2 workers"),
    ],
)
def test_european_excel_tabs_and_single_column_csvs(content: str, description: str) -> None:
    result = parse(content)
    assert [w.worker_id for w in result.workers] == ["A1SEMI0000001", "A1SEMI0000002"]
    assert result.description == description


def test_a_csv_whose_first_column_is_named_hash_is_not_a_comment() -> None:
    assert parse("#,WorkerId\n1,A1WORKER00001\n2,A1WORKER00002\n").description == "WorkerId column, 2 workers"


def test_blank_rows_are_ignored_but_a_blank_worker_cell_is_an_error() -> None:
    content = "WorkerId,Answer\n\nA1WORKER00001,x\n,,\n  ,  \n,an answer without a worker\nA1WORKER00002,y\n"
    assert errors_of(content) == ["line 6: no worker ID in the WorkerId column"]
    assert len(parse(content.replace(",an answer without a worker\n", "")).workers) == 2


def test_header_without_a_worker_column_names_the_columns() -> None:
    (error,) = errors_of("HITId,AssignmentId,Answer.q1\n3AQN,3K4J,hello\n")
    assert error.startswith("no WorkerId column; columns are: HITId, AssignmentId, Answer.q1")
    many = ",".join(f"Column{i}" for i in range(40))
    (error,) = errors_of(many + "\n")
    assert "Column0" in error and "Column39" not in error and "32 more" in error


def test_a_quote_left_open_is_reported_instead_of_swallowing_the_rest() -> None:
    content = 'WorkerId,Answer\nA1WORKER00001,"fine"\nA1WORKER00002,"oops\nA1WORKER00003,lost\nA1WORKER00004,lost\n'
    assert errors_of(content) == ["line 3: a quote opened in this row is never closed"]


# --- the requester site's worker file ----------------------------------------------------------------------


def test_worker_file_update_column_gives_each_worker_its_own_score() -> None:
    content = (
        WORKER_FILE_HEADER + "\r\n"
        '"A1WORKER00001","","","","5"\r\n'
        '"A1WORKER00002","","","3",""\r\n'
        '"A1WORKER00003","Block","spam","","0"\r\n'
        '"A1WORKER00004","","","",""\r\n'
        '"A1WORKER00005","","","1","-7"\r\n'
        f'"A1WORKER00006","","","","{INT32_MAX}"\r\n'
    )
    result = parse(content, default_value=99)
    assert result.workers == (
        WorkerTarget("A1WORKER00001", 5),
        WorkerTarget("A1WORKER00003", 0),
        WorkerTarget("A1WORKER00005", -7),
        WorkerTarget("A1WORKER00006", INT32_MAX),
    )
    assert result.per_worker_values
    assert result.skipped_rows == 2
    assert result.description.startswith("UPDATE-Passed screener column, 4 workers")


def test_worker_file_bad_scores_are_line_errors_all_reported_at_once() -> None:
    content = (
        WORKER_FILE_HEADER + "\n"
        "A1WORKER00001,,,,5\n"
        "A1WORKER00002,,,3,Revoke\n"
        "A1WORKER00003,,,,REVOKE\n"
        "A1WORKER00004,,,,2.5\n"
        f"A1WORKER00005,,,,{INT32_MAX + 1}\n"
        f"A1WORKER00006,,,,{INT32_MIN}\n"
        "a1worker00007,,,,4\n"
        "A1WORKER00008,,,,\n"
    )
    assert errors_of(content) == [
        "line 5: `2.5` in UPDATE-Passed screener is not a whole number between -2147483648 and 2147483647",
        "line 6: `2147483648` in UPDATE-Passed screener is not a whole number between -2147483648 and 2147483647",
        "line 8: `a1worker00007` is not an MTurk worker ID (they are upper-case, starting with A)",
    ]


def test_worker_file_with_every_update_cell_blank_has_nothing_to_grant() -> None:
    (error,) = errors_of(WORKER_FILE_HEADER + "\nA1WORKER00001,,,1,\nA1WORKER00002,,,2,\n")
    assert "no row has a score" in error and "2 left blank" in error


def test_update_blockstatus_is_not_a_score_column() -> None:
    content = '"Worker ID","UPDATE BlockStatus","BlockReason"\nA1WORKER00001,Block,spam\n'
    result = parse(content, default_value=2)
    assert result.workers == (WorkerTarget("A1WORKER00001", 2),)
    assert not result.per_worker_values


def test_several_update_columns_use_the_one_named_for_the_qualification() -> None:
    content = (
        '"Worker ID","CURRENT-Adult","UPDATE-Adult","CURRENT-Passed screener","UPDATE-Passed screener "\n'
        "A1WORKER00001,1,1,,7\n"
        "A1WORKER00002,,,,\n"
    )
    result = parse(content, qualification_name="  passed SCREENER ")
    assert result.workers == (WorkerTarget("A1WORKER00001", 7),)
    assert result.skipped_rows == 1


def test_several_update_columns_and_none_for_this_qualification_is_an_error() -> None:
    content = '"Worker ID","UPDATE-Adult","UPDATE-Passed screener"\nA1WORKER00001,1,2\n'
    (error,) = errors_of(content, qualification_name="Some other qualification")
    assert "`UPDATE-Adult`, `UPDATE-Passed screener`" in error
    assert "not for “Some other qualification”" in error and "`UPDATE-Some other qualification`" in error


def test_two_update_columns_for_this_qualification_is_an_error() -> None:
    content = '"Worker ID","UPDATE-Passed screener","update-passed screener"\nA1WORKER00001,1,2\n'
    (error,) = errors_of(content)
    assert "2 are for “Passed screener”" in error and "keep only the one" in error


def test_a_lone_update_column_for_another_qualification_is_refused() -> None:
    # A worker file exported for another qualification must not grant that qualification's scores here.
    content = '"Worker ID","CURRENT-Adult","UPDATE-Adult"\nA1WORKER00001,,4\n'
    (error,) = errors_of(content)
    assert error == (
        "the file's UPDATE- column (`UPDATE-Adult`) is not for “Passed screener”; "
        "the scores for it go in a column named `UPDATE-Passed screener`"
    )


@pytest.mark.parametrize("name", [None, "", "  "])
def test_update_columns_are_refused_when_the_qualification_name_is_unknown(name: str | None) -> None:
    content = '"Worker ID","UPDATE BlockStatus","UPDATE-Passed screener"\nA1WORKER00001,,4\n'
    (error,) = errors_of(content, qualification_name=name)
    assert "`UPDATE-Passed screener`" in error and "name is not known" in error
    assert "BlockStatus" not in error


def test_without_update_columns_an_unknown_name_does_not_matter() -> None:
    content = '"Worker ID","UPDATE BlockStatus","BlockReason"\nA1WORKER00001,,\n'
    result = parse(content, default_value=2, qualification_name=None)
    assert result.workers == (WorkerTarget("A1WORKER00001", 2),)


# --- plain lists -------------------------------------------------------------------------------------------


def test_plain_list_with_crlf_bom_comments_commas_and_quotes() -> None:
    content = (
        "\ufeff# workers who passed the screener, March\r\n"
        "A1PLAIN000001\r\n"
        "\r\n"
        "  A1PLAIN000002  \r\n"
        "A1PLAIN000003, A1PLAIN000004,A1PLAIN000005\r\n"
        "\"A1PLAIN000006\"\t'A1PLAIN000007'\r\n"
        "# A1COMMENTED01\r\n"
        "A1PLAIN000001\r\n"
        "A1PLAIN000008"
    ).encode()
    result = parse(content, default_value=4)
    assert [w.worker_id for w in result.workers] == [f"A1PLAIN00000{i}" for i in range(1, 9)]
    assert {w.integer_value for w in result.workers} == {4}
    assert result.description == "one ID per line, 8 workers"


def test_plain_list_with_old_mac_line_endings_counts_lines() -> None:
    assert errors_of("A1PLAIN000001\rA1PLAIN000002\rnot-an-id\r") == ["line 3: `not-an-id` is not an MTurk worker ID"]


def test_lowercase_ids_are_errors_not_silently_upper_cased() -> None:
    assert errors_of("A1PLAIN000001\nA1PLAIN000002\n\n# note\n\n\na1b2\nA1PLAIN000003\n") == [
        "line 7: `a1b2` is not an MTurk worker ID (they are upper-case, starting with A)"
    ]
    assert errors_of("a1b2, a3b4\n") == [
        "line 1: `a1b2` is not an MTurk worker ID (they are upper-case, starting with A)",
        "line 1: `a3b4` is not an MTurk worker ID (they are upper-case, starting with A)",
    ]


def test_only_comments_is_no_workers() -> None:
    assert errors_of("# nobody yet\n\n") == ["the file has no worker IDs"]


# --- not text, empty, too many, duplicates -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00b\xee\x9dh^\x01\x00\x00\x90\x04\x00\x00\x13\x00",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00\x00\x00",
        b"WorkerId\nA1WORKER00001\x00\n",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        bytes(range(256)),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
)
def test_binary_files_are_refused_with_a_clear_message(content: bytes) -> None:
    (error,) = errors_of(content)
    assert "not a CSV" in error or "compressed" in error


def test_a_spreadsheet_is_named_as_such_when_its_name_says_so() -> None:
    (error,) = errors_of(b"\x01\x02\x03\x04\x05\x06\x07\x08\x00", filename="workers.XLSX")
    assert "spreadsheet" in error and "CSV UTF-8" in error


def test_excel_unicode_text_utf16_is_read() -> None:
    content = "WorkerId\tAnswer\r\nA1UTF16000001\tok\r\n".encode("utf-16")
    assert parse(content).workers == (WorkerTarget("A1UTF16000001", None),)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"   \r\n\t\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_empty_files(content: bytes) -> None:
    assert errors_of(content) == ["the file is empty"]


def test_a_header_and_no_rows_is_no_workers() -> None:
    assert errors_of("WorkerId,Answer\r\n\r\n") == ["the file has a header but no workers"]


def test_more_workers_than_one_request_may_hold() -> None:
    content = "\n".join(f"A1MANY{i:07d}" for i in range(2001))
    assert errors_of(content, max_workers=2000) == [
        "2,001 workers is more than the 2,000 one request may hold; split the file"
    ]
    # Repeats do not count towards the limit.
    assert len(parse(content + "\nA1MANY0000000", max_workers=2001).workers) == 2001
    assert parse("A1MANY0000000\nA1MANY0000000\n", max_workers=1).description == "one ID per line, 1 worker"


def test_description_uses_thousands_separators() -> None:
    content = "WorkerId\n" + "\n".join(f"A1MANY{i:07d}" for i in range(2000))
    assert parse(content, max_workers=2000).description == "WorkerId column, 2,000 workers"


def test_same_worker_with_a_different_value_is_an_error_and_the_same_value_is_dropped() -> None:
    content = '"Worker ID","UPDATE-Passed screener"\nA1DUP0000001,3\nA1DUP0000002,3\nA1DUP0000001,3\nA1DUP0000002,4\n'
    assert errors_of(content) == ["line 5: A1DUP0000002 appears again with value 4 (line 3 gave 3)"]
    result = parse(content.replace("A1DUP0000002,4", "A1DUP0000002,3"))
    assert result.workers == (WorkerTarget("A1DUP0000001", 3), WorkerTarget("A1DUP0000002", 3))


def test_each_contradiction_names_the_line_its_worker_was_first_seen_on() -> None:
    # A2 is first seen after the first contradiction (A1's), and contradicted after it.
    content = '"Worker ID","UPDATE-Passed screener"\nA1DUP0000001,3\nA1DUP0000001,4\nA2DUP0000002,5\n'
    assert errors_of(content + "A1DUP0000001,Revoke\nA2DUP0000002,6\n") == [
        "line 3: A1DUP0000001 appears again with value 4 (line 2 gave 3)",
        "line 5: A1DUP0000001 appears again with value Revoke (line 2 gave 3)",
        "line 6: A2DUP0000002 appears again with value 6 (line 4 gave 5)",
    ]


def test_too_many_is_reported_along_with_the_line_errors() -> None:
    errors = errors_of("A1ONE0000001\nA1TWO0000002\nbad\n", max_workers=1)
    assert errors == [
        "2 workers is more than the 1 one request may hold; split the file",
        "line 3: `bad` is not an MTurk worker ID",
    ]


def test_parsing_a_long_file_holds_neither_its_text_nor_a_list_of_its_lines() -> None:
    # 20,000 assignments by 20 workers, so the result is tiny: what the parse holds is its reading of the file.
    # Reading it a few lines at a time holds about a tenth of the file's size; its decoded text and a list of its
    # lines took 2.5 times it (a 100,000-row batch results CSV's parse peaked at 40 MB, most of it those).
    answer = "Fine, thanks; the second question was unclear to me, so I answered it as best I could."
    rows = "".join(f'3H{i:018d},A1WORKER{i % 20:05d},"{answer}"\r\n' for i in range(20_000))
    content = ("HITId,WorkerId,Answer.feedback\r\n" + rows).encode()
    already_tracing = tracemalloc.is_tracing()
    if not already_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = parse(content, max_workers=20)
        held = tracemalloc.get_traced_memory()[1] - before
    finally:
        if not already_tracing:
            tracemalloc.stop()
    assert len(result.workers) == 20
    assert held < len(content) / 3


# --- the summary shown in the modal ------------------------------------------------------------------------


def test_summary_shows_the_first_problems_and_counts_the_rest() -> None:
    error = WorkerFileError([f"line {i}: `x{i}` is not an MTurk worker ID" for i in range(1, 26)])
    summary = error.summary()
    assert summary.startswith("line 1: `x1` is not an MTurk worker ID; line 2:")
    assert "line 10:" in summary and "line 11:" not in summary
    assert summary.endswith("… and 15 more problems")
    assert WorkerFileError(["a", "b"]).summary(limit=1) == "a … and 1 more problem"
    assert str(WorkerFileError(["only"])) == "only"


def test_summary_stays_short_whatever_the_file_holds() -> None:
    content = "\n".join("B" + "Z" * 5000 + str(i) for i in range(500))
    summary = WorkerFileError(errors_of(content)).summary()
    assert len(summary) <= 1500
    assert summary.endswith("… and 490 more problems")
    huge = WorkerFileError(["x" * 5000] * 30).summary(limit=30)
    assert len(huge) <= 1500


def test_a_file_of_junk_spells_out_a_thousand_problems_and_counts_the_rest() -> None:
    with pytest.raises(WorkerFileError) as raised:
        parse("\n".join(["junk"] * 3000))
    assert len(raised.value.errors) == 1000 and raised.value.unlisted == 2000
    assert raised.value.errors[-1] == "line 1000: `junk` is not an MTurk worker ID"
    assert raised.value.summary().endswith("… and 2,990 more problems")


def test_values_in_messages_are_clipped_and_kept_on_one_line() -> None:
    (error,) = errors_of('WorkerId\n"A1\u2028`sneaky`' + "X" * 100 + '"\n')
    assert "\u2028" not in error and "`sneaky`" not in error and len(error) < 120


# --- properties --------------------------------------------------------------------------------------------

_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Short IDs like the real ones, and the longest the pattern allows (built from text: from_regex is slow).
worker_ids = st.builds(
    "A".__add__, st.text(_ID_CHARS, min_size=1, max_size=20) | st.text(_ID_CHARS, min_size=60, max_size=63)
)
scores = st.integers(INT32_MIN, INT32_MAX)
# Cell text as people and Excel write it: any printable character, and the ones CSV must quote. A bare CR
# becomes CRLF: Python's csv writer leaves a lone CR unquoted when the line terminator is LF, which no
# reader can tell from a line break (and which Excel never writes).
cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from([",", ";", "\t", '"', "\n", "\r"]),
    max_size=12,
).map(lambda text: text.replace("\r", "\r\n"))
WORKER_HEADERS = ["WorkerId", "Worker ID", "worker_id", "workerid", "WORKER ID", " Worker Id "]


def _plain_extra_name(name: str) -> bool:
    """A random column name that means nothing to the parser (not a worker ID column, not a score column)."""
    return re.sub(r"[^a-z0-9]", "", name.lower()) != "workerid" and not name.strip().lower().startswith("update-")


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, list[WorkerTarget], int | None, int]:
    """A CSV file of unique workers, and what parsing it must give: workers, default value, skipped rows."""
    workers = draw(st.lists(worker_ids, min_size=1, max_size=15, unique=True))
    default = draw(st.none() | scores)
    per_worker = draw(st.booleans())
    values: list[int | None] = (
        draw(
            st.lists(st.none() | scores, min_size=len(workers), max_size=len(workers)).filter(
                lambda v: v != [None] * len(v)
            )
        )
        if per_worker
        else [default] * len(workers)
    )
    extra_names = draw(st.lists(cell_text.filter(_plain_extra_name), max_size=4))
    if per_worker:
        extra_names += draw(st.sampled_from([[], ["UPDATE BlockStatus", "BlockReason"], [f"CURRENT-{QUAL_NAME}"]]))
    columns: list[str] = [draw(st.sampled_from(WORKER_HEADERS)), *extra_names]
    if per_worker:
        columns.append(f"UPDATE-{QUAL_NAME}")
    order = draw(st.permutations(range(len(columns))))
    rows: list[list[str]] = []
    for worker, value in zip(workers, values, strict=True):
        cells = [worker, *(draw(cell_text) for _ in extra_names)]
        if per_worker:
            cells.append("" if value is None else str(value))
        rows.append(cells)
    buffer = io.StringIO(newline="")
    writer = csv.writer(
        buffer,
        delimiter=draw(st.sampled_from([",", "\t", ";"])),
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        lineterminator=draw(st.sampled_from(["\r\n", "\n"])),
    )
    writer.writerow([columns[i] for i in order])
    for row in rows:
        writer.writerow([row[i] for i in order])
    text = buffer.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    try:
        content = text.encode(encoding)
        if encoding == "cp1252":
            content.decode("utf-8")  # cp1252 bytes that happen to be UTF-8 too are read as UTF-8 (different text)
            content = text.encode("utf-8")
    except UnicodeError:
        content = text.encode("utf-8")
    expected = [WorkerTarget(w, v) for w, v in zip(workers, values, strict=True) if v is not None or not per_worker]
    return content, expected, default, values.count(None) if per_worker else 0


@st.composite
def plain_files(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A plain list, with repeats, in any layout people type or paste; and the IDs it holds, first seen first."""
    workers = draw(st.lists(worker_ids, min_size=1, max_size=20))
    separators = st.sampled_from(["\n", "\r\n", "\r", ", ", ",", " ", "\t", ";", "\n\n", "\n# a note, a comment\n"])
    quotes = st.sampled_from(["", '"', "'"])
    parts: list[str] = [draw(st.sampled_from(["", "\ufeff", "# exported list\n", "\n\n"]))]
    for index, worker in enumerate(workers):
        if index:
            parts.append(draw(separators))
        quote = draw(quotes)
        parts.append(f"{quote}{worker}{quote}")
    parts.append(draw(st.sampled_from(["", "\n", "\r\n", "\n\n  \n"])))
    return "".join(parts).encode(), list(dict.fromkeys(workers))


def _check_result(result: WorkerFile) -> None:
    ids = [w.worker_id for w in result.workers]
    assert all(WORKER_ID_PATTERN.fullmatch(w) for w in ids)
    assert len(ids) == len(set(ids))
    assert 0 < len(ids) <= 50


@settings(max_examples=200, deadline=None)
@given(
    content=st.binary(max_size=400)
    | st.text(max_size=300).map(str.encode)
    | st.lists(
        st.sampled_from(
            [
                "WorkerId",
                "Worker ID",
                "UPDATE-Passed screener",
                "UPDATE-x",
                "Revoke",
                '"',
                ",",
                ";",
                "\t",
                "\n",
                "\r\n",
                "#",
                "sep=;",
                "A1WORKER00001",
                "A1WORKER00002",
                "a1worker",
                "5",
                "-1",
                "99999999999",
                " ",
                "\ufeff",
            ]
        ),
        max_size=40,
    ).map(lambda parts: "".join(parts).encode()),
    name=st.sampled_from([QUAL_NAME, "x", None]),
)
@example(content=b'WorkerId\n"', name=None)
@example(content=b"\xef\xbb\xbf\xff", name=None)
def test_any_bytes_give_valid_unique_workers_or_a_worker_file_error(content: bytes, name: str | None) -> None:
    try:
        result = parse_worker_file(content, default_value=None, qualification_name=name, max_workers=50)
    except WorkerFileError as error:
        assert error.errors and all(isinstance(e, str) and e for e in error.errors)
        assert len(error.summary()) <= 1500
        return
    _check_result(result)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_csv_round_trip(case: tuple[bytes, list[WorkerTarget], int | None, int]) -> None:
    content, expected, default, skipped = case
    result = parse_worker_file(content, default_value=default, qualification_name=QUAL_NAME, max_workers=len(expected))
    assert list(result.workers) == expected
    assert result.skipped_rows == skipped


@settings(max_examples=200, deadline=None)
@given(plain_files(), st.none() | scores)
def test_plain_round_trip(case: tuple[bytes, list[str]], default: int | None) -> None:
    content, expected = case
    result = parse_worker_file(content, default_value=default, qualification_name=None, max_workers=len(expected))
    assert result.workers == tuple(WorkerTarget(w, default) for w in expected)
    assert not result.per_worker_values


def test_a_header_search_reads_only_a_few_lines_from_each_line_it_tries() -> None:
    """Comment lines that each name a worker column and open a quote: read from each of them to the end of the
    file, 20,000 of them took minutes (quadratic). Run on a thread with a generous limit, so the test ends
    either way; read a few lines ahead, it takes well under a second."""
    content = '#workerid x,"\n' + '#workerid x","\n' * 20_000
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            parse(content, default_value=1)
        except WorkerFileError as error:
            outcome.append(error)

    reader = threading.Thread(target=attempt, daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "the header search read the file again from every line"
    assert [str(error) for error in outcome] == ["the file has no worker IDs"]
