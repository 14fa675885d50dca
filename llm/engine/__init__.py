"""The engine: slots of work (a persona's text, a dialogue, a judged text) through one slot runner.

`runner` (the bounded pool of slot workers every mode uses), `ask` (one question to the client, and one asked
again until its answer is readable), `texts` (text mode: validation and generation per persona slot), `dialogue`
(dialogue mode), `prompts` and `answers` (what is sent, and how answers are read), `stats` (run counters and the
run summary), `resume` (which slots of a results file are still to do)."""
