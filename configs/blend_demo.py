"""Writes the blend demo of issue #6 to a CSV and prints the command that analyses it.

    python configs/blend_demo.py /tmp/blend_demo.csv
    jaxexp blend --preds=/tmp/blend_demo.csv --round=1 --clip=0: --weights=champion=50/30/20,... --workdir=DIR

``jaxexp blend --demo --workdir=DIR`` runs the same analysis without the file.
The data (jaxexp.blending.demo): a whole-number target; models "notemporal",
"multi" (notemporal re-run: differs on 2% of the rows by ~0.05) and "finetuned";
the pipeline rounds the blend to whole numbers and clips it at 0. Distinct
weightings such as 50/30/20, 52/28/20 and 53/27/20 then score exactly the same
MAE (2.98875).
"""

import sys

from jaxexp.blending import demo

if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "blend_demo.csv"
    demo.demo_data().to_csv(path, index=False)
    print(f"wrote {path}; analyse it with:")
    print(
        f"jaxexp blend --preds={path} --metric=mae --step=0.01 --round={demo.ROUND_TO:g} --clip={demo.CLIP} "
        f"--weights={demo.WEIGHTS} --compare={demo.COMPARE} --workdir=workdirs/blend_demo"
    )
