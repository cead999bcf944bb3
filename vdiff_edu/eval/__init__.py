"""Evaluation: how good are generated Moving MNIST clips? (notebook 09)

The sub-package stands apart from the generator: it never imports the model code (``unet``, ``blocks``,
``attention``, ``embeddings``, ``autoencoder``, ``train``, ``sampling``, ``pipeline``, ``presets``), so it judges
any clips, from this toolkit or elsewhere, with networks of its own (``tests/test_eval_boundary.py`` checks it).
It reads only the data side of the package (``digits``, ``moving_mnist``), ``similarity``, ``checkpoint``,
``config`` and ``utils``. Modules, bottom-up:

    feature_nets   the digit classifier and the (2+1)D video encoder, the canonical geometry, loading the
                   shipped weights (vdiff_edu/weights/feature_*.safetensors), their held-out accuracy
    report         the Markdown / JSON report of an evaluation, and the feature networks' card
    training       training the feature networks from scratch, reproducibly (writes weights and card)
    metrics        FVD-MM, KVD-MM, frame FD, identity, faithfulness, flicker, motion, prediction; evaluate_clips
    cli            ``python -m vdiff_edu evaluate``: its arguments and the command

    from vdiff_edu.eval import metrics
    result = metrics.evaluate_clips("runs/my_run")      # writes runs/my_run/evaluation.md and .json
"""
