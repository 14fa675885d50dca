"""The engine: slots of work (a persona's text, a dialogue, a judged text) through one slot runner.

`slots` (the bounded pool of slot workers every mode uses), `rounds` (the same slots driven in rounds, for batch
mode), `unique` (texts settled in id order against the accepted ones, for --dedup), `settings` (what every mode's
settings share: prompt set, attribute labels, emotion set, bounds), `ask` (one question to the client, and one asked
again until its answer is readable), `texts` (text mode: validation and generation per persona slot), `dialogue`
(dialogue mode), `messages` and `promptset` (what is sent: the messages of each request, rendered from a prompt
set's templates), `answers` and `languages` (how answers are read and checked), `stats` (run counters and the run
summary), `resume` (which slots of a results file are still to do)."""
