"""What a run directory is: its files, checkpoints and records, written and read back.

runs/<spec>-<time>/
    spec.yaml         the spec as it ran (inheritance and --set applied)
    run.json          the complete record: composer version, every option, dataset, protocol, processes,
                      versions, and the options a resume changed (--override)
    run.log           the console output, as plain lines
    metrics.jsonl     one line per epoch: stage, loss, lr, throughput, single-view test metrics
    checkpoints/      step-N/ (weights, optimiser, generators, progress, manifest) after every epoch and every
                      --save-every N steps, the newest 2 kept, `latest` naming the newest; best.safetensors
                      (composer/rundir/checkpoint_dir.py)
    summary.json      final multi-view metrics per test part, bad videos
    README.md         the model card (composer/rundir/card.py): written at the start, after every epoch and
                      at the end
    per_class.json    per-class accuracy
    confusion.json    per test part: its classes, and the matrix (rows = true, columns = predicted, multi-view)
    bad_videos.txt    the videos that could not be decoded, one per line (empty if none)
    learning-curves.png, confusion-<part>.png   pictures of the run (composer/viz/plots.py)
    (tracker files)   TensorBoard events, mlflow.db, ... (--log-with)
Only the main process writes, with one permission policy (composer/files.py). Everything a resume needs (which
stage, epoch and batch come next, optimiser state, generators) is in the checkpoints folder, so `composer run
--resume RUN_DIR` continues exactly where an interrupted run stopped (resume.py rebuilds the options from run.json).
"""
