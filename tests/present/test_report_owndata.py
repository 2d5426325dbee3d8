"""The handout names your own data: the file, its hash, the target and the task."""

from bnviz import owndata
from bnviz.config import ExperimentConfig
from bnviz.present import report
from tests.owndata.files import linear


def test_the_report_describes_your_own_data():
    info = owndata.prepare(owndata.read(linear(), "prices.csv"), "u").info
    cfg = ExperimentConfig(**owndata.config_changes("0123456789abcdef", "u", info))
    data = dict(report.describe_config(cfg))["Data"]
    assert data == ("your own data: prices.csv (data=0123456789abcdef), 3 inputs standardized with the training "
                    "split's mean and std, predicting column u: a regression (squared-error loss, scored by R²)")
    net = dict(report.describe_config(cfg))["Network"]
    assert "linear regression output" in net
