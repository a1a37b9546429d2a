"""Is a final answer right? :mod:`.grader` (``grade``) reads an answer the way a careful reader of
Azerbaijani does, with :mod:`.az_text` (words and numbers as written), :mod:`.asserted_numbers`
(which number the answer asserts) and :mod:`.entities` (which named thing it names)."""
