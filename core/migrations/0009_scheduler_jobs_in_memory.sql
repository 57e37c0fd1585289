-- The training scheduler keeps its jobs in memory, bound to its settings (training/schedule.py): the table
-- APScheduler's database job store created holds nothing that is still read.
DROP TABLE IF EXISTS apscheduler_jobs;
