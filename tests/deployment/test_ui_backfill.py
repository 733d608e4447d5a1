"""A backfill started from the Airflow 3 UI, in headless Chromium: log in, open the pipeline's DAG,
Trigger -> Backfill with a date range and Rows per shard, Run Backfill; the runs must then succeed
(polled through the REST API) and the screenshot of the filled dialog lands in docs/ui-backfill.png."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from hang_guard import hang_guard

from deployment.real_stack import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    PIPELINE_DAG_ID,
    REPO,
    UI_DATES,
    AirflowStack,
    require_worker,
)

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
)
SCREENSHOT = REPO / "docs" / "ui-backfill.png"
UI_SHARD_ROWS = 1000
UI_WAIT_SECONDS = hang_guard(20)  # one element: the React app renders after its API calls on a busy 2-core machine


def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Chromium is not installed: run scripts/install-browser.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(UI_WAIT_SECONDS)
    return driver


def open_dialog(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, "//*[@role='dialog' and @data-state='open'][.//*[contains(., 'Run Backfill')]]")


def pick_datetime(driver, picker_index: int, day: str) -> None:
    """Types `day` 00:00 into the From (0) or To (1) date-time picker of the backfill form."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    dialog = open_dialog(driver)
    dialog.find_elements(By.CSS_SELECTOR, "[data-testid=datetime-input]")[picker_index].click()
    date_box = driver.find_element(
        By.XPATH, "//*[@role='dialog' and @data-state='open']//input[@placeholder='YYYY/MM/DD']")
    date_box.send_keys(Keys.CONTROL, "a")
    date_box.send_keys(day.replace("-", "/"))
    time_box = driver.find_element(
        By.XPATH, "//*[@role='dialog' and @data-state='open']//input[@placeholder='HH:mm']")
    time_box.send_keys(Keys.CONTROL, "a")
    time_box.send_keys("00:00", Keys.ENTER)
    # Close the picker's popover by clicking the form's title, not Escape (that closes the whole dialog).
    open_dialog(driver).find_element(By.XPATH, ".//h2 | .//*[contains(text(), 'Date Range')]").click()


def start_backfill_in_the_ui(driver, base_url: str, from_day: str, to_day: str, shard_rows: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{base_url}/")
    driver.find_element(By.NAME, "username").send_keys(ADMIN_USER)
    driver.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    driver.find_element(By.XPATH, "//*[@aria-label='User']")  # the logged-in nav bar
    driver.get(f"{base_url}/dags/{PIPELINE_DAG_ID}")
    driver.find_element(By.CSS_SELECTOR, "[data-testid=trigger-dag-button]").click()
    driver.find_element(
        By.XPATH, "//*[@role='dialog' and @data-state='open']//label[.//input[@type='radio' and @value='backfill']]"
    ).click()
    pick_datetime(driver, 0, from_day)
    pick_datetime(driver, 1, to_day)
    shard_rows_box = open_dialog(driver).find_element(By.NAME, "element_shard_rows")
    shard_rows_box.send_keys(Keys.CONTROL, "a")
    shard_rows_box.send_keys(str(shard_rows), Keys.TAB)  # the form takes the value on blur
    # Airflow 3.3.2's backfill dialog sends the Run Parameters as dag_run_conf only when this box is
    # ticked (ui/dist: `dag_run_conf: overrideExistingParams ? JSON.parse(conf) : null`).
    open_dialog(driver).find_element(
        By.XPATH, ".//label[contains(normalize-space(), 'Override parameters on existing runs')]").click()
    run_button = open_dialog(driver).find_element(By.XPATH, ".//button[normalize-space()='Run Backfill']")
    deadline = time.monotonic() + UI_WAIT_SECONDS
    while not run_button.is_enabled() and time.monotonic() < deadline:
        time.sleep(0.5)  # the dialog previews the runs (backfills/dry_run) before it enables the button
    SCREENSHOT.parent.mkdir(exist_ok=True)
    driver.save_screenshot(str(SCREENSHOT))
    assert run_button.is_enabled(), f"Run Backfill stays disabled; the form says: {open_dialog(driver).text}"
    run_button.click()


def test_backfill_started_from_the_ui_scores_every_day(airflow_stack: AirflowStack, tmp_path: Path):
    require_worker()
    airflow_stack.api("PATCH", f"/api/v2/dags/{PIPELINE_DAG_ID}", json={"is_paused": False})
    airflow_stack.wait_for_backfills_to_complete()  # one running backfill per DAG: the REST test's may linger
    before = {backfill["id"] for backfill in airflow_stack.api("GET", "/api/v2/backfills",
                                                                params={"dag_id": PIPELINE_DAG_ID})["backfills"]}
    driver = browser()
    try:
        start_backfill_in_the_ui(driver, airflow_stack.base_url, UI_DATES[0], UI_DATES[-1], UI_SHARD_ROWS)
        deadline = time.monotonic() + 120  # creating a backfill plans every run first: slow on a loaded machine
        while True:
            backfills = [backfill for backfill in airflow_stack.api(
                "GET", "/api/v2/backfills", params={"dag_id": PIPELINE_DAG_ID})["backfills"]
                if backfill["id"] not in before]
            if backfills or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert len(backfills) == 1, f"the UI created no backfill; the page says: {driver.find_element('tag name', 'body').text[:3000]}"
    except Exception:
        driver.save_screenshot(str(tmp_path / "failure.png"))
        shutil.copy(tmp_path / "failure.png", airflow_stack.logs / "ui-failure.png")
        raise
    finally:
        driver.quit()
    backfill = backfills[0]
    assert backfill["dag_run_conf"].get("shard_rows") == UI_SHARD_ROWS, backfill
    runs = [run for run in airflow_stack.dag_runs() if run["logical_date"][:10] in UI_DATES]
    assert sorted(run["logical_date"][:10] for run in runs) == list(UI_DATES), runs
    finished = airflow_stack.wait_for_runs({run["dag_run_id"] for run in runs}, 150 * len(runs))
    for run in finished.values():
        folder = airflow_stack.home / "predictions" / "tabular_risk" / "model_version=v1" / f"ds={run['logical_date'][:10]}"
        assert (folder / "_SUCCESS").exists(), folder
